"""The timeline reads back per client, in order, without duplicates, and the CLI prints it."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from services.common.bus import Bus
from services.contracts import TimelineEntry
from services.contracts import subjects as s
from services.timeline.reader import read_timeline, render
from tests.conftest import AuthServer

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def entry(n: int, client: str, kind: str = "note") -> TimelineEntry:
    return TimelineEntry(
        id=f"{client}-{n}",
        at=T0 + timedelta(minutes=n),
        client_id=client,
        kind=kind,  # type: ignore[arg-type]
        text=f"touch {n}",
        service="test",
        ticket_number="SR-1001",
    )


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
    text = render(acme, tz="America/Chicago")
    assert "09:00:00 CST  SR-1001" in text.splitlines()[0]


async def test_cli_prints_the_timeline(bus: Bus, nats_server: AuthServer) -> None:
    e = entry(1, "initech", "request_received")
    await bus.publish(s.timeline_subject("initech"), e, msg_id=e.id)
    env = {**os.environ, **nats_server.service_env("ops")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.timeline", "initech", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "request_received" in out.decode()
    assert "touch 1" in out.decode()
