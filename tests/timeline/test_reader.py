"""The timeline reads back per client, in order, without duplicates, and the CLI prints it safely:
desk time, values, escaped control characters, a non-zero exit for an unknown client, a fast clear
error when NATS is unreachable."""

from __future__ import annotations

import json
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.natsserver import free_ports
from services.contracts import TimelineEntry
from services.contracts import subjects as s
from services.timeline import cli as timeline_cli
from services.timeline.reader import as_json, read_timeline, render
from tests.support import CommandLine

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CHICAGO = ZoneInfo("America/Chicago")
# What a hostile email body can carry: clear screen, retitle the terminal, CSI as one C1 byte,
# a bidi override that reverses what follows, DEL, a line separator and a plain newline.
HOSTILE = "Hi\x1b[2J\x1b]0;pwned\x07 \x9b31m red \u202eevil\u202c\x7f\u2028next\nline"


def entry(n: int, client: str, kind: str = "note", text: str = "") -> TimelineEntry:
    return TimelineEntry(
        id=f"{client}-{n}",
        at=T0 + timedelta(minutes=n),
        client_id=client,
        kind=kind,  # type: ignore[arg-type]
        text=text or f"touch {n}",
        service="test",
        ticket_number="SR-1001",
    )


def unsafe(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n"]


async def test_reads_one_clients_history_in_order(bus: Bus) -> None:
    for n in range(5):
        for client in ("acme", "globex"):
            e = entry(n, client)
            await bus.publish(s.timeline_subject(client), e, msg_id=e.id)
    # A re-published touch (a retried handler) is not recorded twice.
    again = entry(2, "acme")
    await bus.publish(s.timeline_subject("acme"), again, msg_id=again.id)

    acme = await read_timeline(bus, "acme")
    assert [e.id for e in acme] == [f"acme-{n}" for n in range(5)]
    assert await read_timeline(bus, "nobody") == []
    text = render(acme, zone=CHICAGO)
    assert text.splitlines()[0].startswith("Mon Nov 23, 9:00 AM CST  SR-1001   note")


def test_render_shows_instants_in_the_zone_and_escapes_controls() -> None:
    queued = entry(
        0, "acme", "queued", "Queued until 2026-12-01T14:00:00+00:00 for alice; due 2026-12-01T18:00:00Z."
    )
    hostile = entry(1, "acme", "request_received", HOSTILE)
    text = render([queued, hostile], zone=CHICAGO)
    assert "Queued until Tue Dec 1, 8:00 AM CST for alice; due Tue Dec 1, 12:00 PM CST." in text
    assert unsafe(text) == [] and len(text.splitlines()) == 2
    assert "Hi\\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m red \\u202eevil\\u202c\\x7f\\u2028next\\x0aline" in text


def test_json_escapes_what_json_itself_leaves_raw() -> None:
    out = as_json([entry(1, "acme", text=HOSTILE)])
    assert unsafe(out) == []
    assert json.loads(out)[0]["text"] == HOSTILE  # still the same data for a program


def nats_env(cfg: BusConfig) -> dict[str, str]:
    """How a CLI process reaches the test server: its URL and, when the bus has users, the test's one."""
    env = {"FRONTDESK_NATS_URL": cfg.url[0]}
    if cfg.user:
        env.update(FRONTDESK_NATS_USER=cfg.user, FRONTDESK_NATS_PASSWORD=cfg.password.reveal())
    return env


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CommandLine:
    """`python -m services.timeline` as a person runs it, with a call's own way to reach NATS."""
    return CommandLine(timeline_cli.main, capsys, monkeypatch, timeout=60)


async def test_cli_prints_the_timeline_in_desk_time_safely(
    bus: Bus, bus_config: BusConfig, cli: CommandLine
) -> None:
    for e in (entry(1, "initech", "request_received"), entry(2, "initech", text=HOSTILE)):
        await bus.publish(s.timeline_subject("initech"), e, msg_id=e.id)
    status, out, err = await cli.process("initech", **nats_env(bus_config))
    assert status == 0, err
    first, second = out.splitlines()
    assert first.startswith("Mon Nov 23, 9:01 AM CST  SR-1001   request_received") and "touch 1" in first
    assert "\x1b" not in out and unsafe(out) == [] and "\\x1b[2J" in second
    assert err == ""  # no "nats disconnected" on a normal close
    status, out, _ = await cli.run("initech", "--json", **nats_env(bus_config))
    assert status == 0 and unsafe(out) == [] and json.loads(out)[1]["text"] == HOSTILE


async def test_cli_unknown_client_exits_non_zero(bus_config: BusConfig, cli: CommandLine) -> None:
    status, out, err = await cli.run("acme-typo", **nats_env(bus_config))
    assert status == 2 and out == ""
    assert "unknown client 'acme-typo'; known clients: acme, globex, initech, unknown" in err
    status, out, _ = await cli.run("globex", **nats_env(bus_config))  # known, nothing yet
    assert (status, out) == (0, "no timeline entries for globex\n")
    status, _, err = await cli.run(">", **nats_env(bus_config))  # a wildcard would read every client
    assert status == 2 and "not a client id" in err


async def test_cli_fails_fast_and_clearly_without_nats(cli: CommandLine) -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    # An anonymous (development) client of a port nothing listens on: only reachability is tested.
    status, out, err = await cli.run(
        "acme", "--timeout", "0.5", FRONTDESK_NATS_URL=f"nats://127.0.0.1:{port}", FRONTDESK_ENV="development"
    )
    took = time.monotonic() - started
    assert status == 3 and out == ""
    assert err == (
        f"timeline: cannot reach NATS at nats://127.0.0.1:{port} within 0.5 s; "
        "is it running? (FRONTDESK_NATS_URL)\n"
    )
    assert took < 15
