"""`python -m services.deadletters`: a real dead letter listed (escaped) and replayed to its subject."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from services.common.bus import Bus, Poison
from services.common.consumer import Consumer, ConsumerSpec, Delivery
from services.contracts import ServiceRequest
from services.contracts import subjects as s
from services.deadletters import cli as deadletters_cli
from services.deadletters.letters import read
from tests.conftest import AuthServer
from tests.support import CommandLine, email_request, until


@pytest.fixture
def cli(
    nats_server: AuthServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CommandLine:
    """`python -m services.deadletters` as ops runs it."""
    env = {**nats_server.service_env("ops"), "FRONTDESK_ENV": "development"}
    return CommandLine(deadletters_cli.main, capsys, monkeypatch, env)


async def dead_letter(bus: Bus, reason: str, *payloads: bytes) -> None:
    """Each payload dead-lettered by a real consumer: undecodable ones as such, the others as poison."""
    for n, payload in enumerate(payloads):
        await bus.publish_bytes(s.request_subject("email"), payload, msg_id=f"hostile-{n}")

    async def handle(_: ServiceRequest, __: Delivery) -> None:
        raise Poison(reason)

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-cli", s.REQUESTS_ALL)
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(lambda: consumer.dead_lettered == len(payloads), 15, "dead-lettered")
    finally:
        stop.set()
        await task


async def test_list_escapes_and_replay_sends_it_back(bus: Bus, cli: CommandLine) -> None:
    valid = msgspec.json.encode(email_request(7))
    await dead_letter(bus, "bad \x1b[31mred\x1b[0m client", b"\x1b]0;pwned\x07\x1b[2J not json", valid)
    code, out, err = await cli.process("list")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned\\x07" in out and "bad \\x1b[31mred" in out
    assert "fd.requests.email" in out and "durable=t-cli" in out
    letters = await read(bus)
    assert len(letters) == 2
    [letter] = [one for one in letters if one.data == valid]
    before = (await bus.js.stream_info(s.STREAM_REQUESTS)).state.messages
    code, out, err = await cli.run("replay", str(letter.seq))
    assert code == 0, err
    assert f"replayed {letter.seq} to fd.requests.email" in out
    assert [one.seq for one in await read(bus)] == [one.seq for one in letters if one is not letter]
    assert (await bus.js.stream_info(s.STREAM_REQUESTS)).state.messages == before + 1
    last = await bus.js.get_last_msg(s.STREAM_REQUESTS, s.request_subject("email"))
    assert last.data == valid
    code, out, err = await cli.run("replay", "--all")
    assert code == 0, err
    code, out, _ = await cli.run("list")
    assert code == 0 and "no dead letters" in out


async def test_replay_of_an_unknown_letter_fails_clearly(bus: Bus, cli: CommandLine) -> None:
    code, _, err = await cli.run("replay", "999")
    assert code == 1 and "no dead letter 999" in err
