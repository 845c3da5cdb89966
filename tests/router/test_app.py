"""The router against a real nats-server: tickets exactly once, queue release, threading."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig
from services.contracts import (
    AcknowledgeClient,
    DispatchTicket,
    RelayClientMessage,
    RequestAmended,
    ThreadKeys,
)
from services.contracts import subjects as s
from services.router import routing
from services.router.app import main
from services.router.config import RouterConfig
from tests.router.stack import (
    FRIDAY_18,
    MONDAY_10,
    POLICY,
    commands,
    request,
    router,
    settled,
    ticket,
    ticket_numbers,
    timeline,
)
from tests.support import serving, until


async def test_request_opens_one_ticket_and_redelivery_does_not_double(
    bus: Bus, bus_config: BusConfig
) -> None:
    async with router(bus_config):
        await bus.publish(s.request_subject("email"), request("r1"), msg_id="r1")
        await settled(bus)
        # The same request again under another Msg-Id: what a redelivery looks like to the handler.
        await bus.publish(s.request_subject("email"), request("r1"), msg_id="r1-again")
        await settled(bus)
    assert await ticket_numbers(bus) == ["SR-1001"]
    opened = await ticket(bus, "SR-1001")
    assert opened is not None
    assert (opened.client_id, opened.decision.disposition, opened.assignee) == ("acme", "dispatch", "alice")
    assert opened.request_ids == ("r1",)
    sent = await commands(bus)
    assert [msg_id for msg_id, _ in sent] == ["ack:SR-1001", "dispatch:SR-1001"]
    assert isinstance(sent[0][1], AcknowledgeClient) and isinstance(sent[1][1], DispatchTicket)
    kinds = [e.kind for e in await timeline(bus)]
    assert kinds == ["request_received", "routed"]


async def test_two_routers_share_one_durable_consumer(bus: Bus, bus_config: BusConfig) -> None:
    async with router(bus_config), router(bus_config):
        for n in range(20):
            await bus.publish(
                s.request_subject("email"), request(f"r{n}", email="hank@globex.example"), msg_id=f"r{n}"
            )
        await until(lambda: _count(bus, 20))
        await settled(bus)
    numbers = await ticket_numbers(bus)
    assert numbers == sorted(f"SR-{1001 + n}" for n in range(20))
    request_ids = set()
    for number in numbers:
        found = await ticket(bus, number)
        assert found is not None
        request_ids.add(found.request_id)
    assert request_ids == {f"r{n}" for n in range(20)}
    ids = [msg_id for msg_id, _ in await commands(bus)]
    assert len(ids) == 40 and len(set(ids)) == 40
    # Globex rotates over alice and carol (bob excluded): the shared cursor alternates them.
    assignees = [str(getattr(await ticket(bus, n), "assignee", None)) for n in numbers]
    assert sorted(assignees) == ["alice"] * 10 + ["carol"] * 10


async def _count(bus: Bus, n: int) -> bool:
    return len(await ticket_numbers(bus)) >= n


async def test_queued_ticket_is_released_when_the_desk_opens(bus: Bus, bus_config: BusConfig) -> None:
    clock = ManualClock(FRIDAY_18)
    async with router(bus_config, clock):
        await bus.publish(
            s.request_subject("email"), request("q1", email="hank@globex.example", at=FRIDAY_18), msg_id="q1"
        )
        await settled(bus)
        queued = await ticket(bus, "SR-1001")
        assert queued is not None and queued.decision.disposition == "queue"
        assert queued.decision.notify_at == datetime(2026, 11, 23, 14, tzinfo=UTC)
        raw, _ = await bus.kv_get(s.KV_TIMERS, routing.timer_key("SR-1001"))
        assert raw is not None
        clock.advance(timedelta(days=2, hours=13, minutes=59))  # Monday 07:59 CST: still closed
        await asyncio.sleep(0.3)
        assert [i for i, _ in await commands(bus)] == ["ack:SR-1001"]
        clock.advance(timedelta(minutes=1))  # Monday 08:00 CST

        async def released() -> bool:
            return len(await commands(bus)) == 2

        await until(released)
        await until(lambda: _timer_gone(bus, "SR-1001"))
    msg_id, command = (await commands(bus))[1]
    assert msg_id == "dispatch:SR-1001"
    assert isinstance(command, DispatchTicket) and command.released_from_queue
    assert [e.kind for e in await timeline(bus)] == ["request_received", "queued", "released"]


async def _timer_gone(bus: Bus, number: str) -> bool:
    raw, _ = await bus.kv_get(s.KV_TIMERS, routing.timer_key(number))
    return raw is None


@pytest.mark.parametrize(
    ("follow_up", "threads"),
    [
        (dict(thread=ThreadKeys(in_reply_to=("<m1@acme.example>",))), True),
        (dict(thread=ThreadKeys(ticket_token="SR-1001", token_signed=True), email="who@else.example"), True),
        (
            dict(thread=ThreadKeys(ticket_token="SR-1001"), email="raj@acme.example"),
            True,
        ),  # bare, same client
        (dict(thread=ThreadKeys(ticket_token="SR-1001"), email="who@else.example"), False),  # bare, stranger
        (
            dict(
                thread=ThreadKeys(
                    references=(f"<SR-1001.abc.{'0' * 16}@frontdesk.test>",), references_ours=True
                )
            ),
            True,
        ),
    ],
)
async def test_follow_up_threads_to_the_ticket(
    bus: Bus, bus_config: BusConfig, follow_up: dict[str, Any], threads: bool
) -> None:
    first = request("t1", thread=ThreadKeys(message_id="<m1@acme.example>"))
    async with router(bus_config):
        await bus.publish(s.request_subject("email"), first, msg_id="t1")
        await settled(bus)
        await bus.publish(s.request_subject("email"), request("t2", **follow_up), msg_id="t2")
        await settled(bus)
    opened = await ticket(bus, "SR-1001")
    assert opened is not None
    if threads:
        assert await ticket_numbers(bus) == ["SR-1001"]
        assert opened.request_ids == ("t1", "t2")
        relay = [c for i, c in await commands(bus) if i == "relay:t2"]
        assert len(relay) == 1 and isinstance(relay[0], RelayClientMessage)
        assert "threaded" in [e.kind for e in await timeline(bus)]
    else:
        assert await ticket_numbers(bus) == ["SR-1001", "SR-1002"]
        assert opened.request_ids == ("t1",)


async def test_bounce_threads_as_timeline_only_and_stray_bounce_opens_nothing(
    bus: Bus, bus_config: BusConfig
) -> None:
    async with router(bus_config):
        await bus.publish(
            s.request_subject("email"), request("b0", thread=ThreadKeys(message_id="<m1@x>")), msg_id="b0"
        )
        bounce = request("b1", nature="bounce", thread=ThreadKeys(in_reply_to=("<m1@x>",)))
        await bus.publish(s.request_subject("email"), bounce, msg_id="b1")
        stray = request("b2", email="mailer-daemon@elsewhere.example", nature="auto_reply")
        await bus.publish(s.request_subject("email"), stray, msg_id="b2")
        await settled(bus)
    assert await ticket_numbers(bus) == ["SR-1001"]
    assert [i for i, _ in await commands(bus)] == ["ack:SR-1001", "dispatch:SR-1001"]  # no relay for a bounce
    kinds = [(e.kind, e.client_id) for e in await timeline(bus)]
    assert ("bounce_recorded", "acme") in kinds
    assert ("request_received", "unknown") in kinds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data.decode()


async def test_amendment_lands_on_the_timeline_and_health_reports_ready(
    bus: Bus, bus_config: BusConfig
) -> None:
    port = _free_port()
    cfg = RouterConfig(http_port=port, policy=POLICY, timer_poll=0.1, bus=bus_config)
    async with serving(main, cfg):
        # The amendment overtakes its request: the router retries it until the request is routed.
        amended = RequestAmended(
            id="a1", request_id="v1", received_at=MONDAY_10, transcription="server is down"
        )
        await bus.publish(s.REQUEST_AMENDED, amended, msg_id="a1")
        await bus.publish(s.request_subject("voice"), request("v1", channel="voice"), msg_id="v1")

        async def amended_seen() -> bool:
            return "request_amended" in [e.kind for e in await timeline(bus)]

        await until(amended_seen)
        response = await _get(port, "/readyz")
        assert response.startswith("HTTP/1.1 200")
        assert '"tickets_opened":1' in response
        metrics = await _get(port, "/metrics")
        assert "frontdesk_routing_decisions_total{disposition=" in metrics
        assert "frontdesk_consumer_lag{durable=" in metrics
        assert "frontdesk_timers_pending " in metrics
    entry = next(e for e in await timeline(bus) if e.kind == "request_amended")
    assert (entry.client_id, entry.ticket_number) == ("acme", "SR-1001")
    assert "server is down" in entry.text


async def test_follow_up_in_the_same_batch_as_its_original_still_threads(
    bus: Bus, bus_config: BusConfig
) -> None:
    # Published back to back, before the router runs, so both arrive in one fetched batch: the
    # follow-up must wait for its original's thread key even though requests are handled in parallel.
    for n in range(10):
        await bus.publish(
            s.request_subject("email"),
            request(f"o{n}", thread=ThreadKeys(message_id=f"<o{n}@acme.example>")),
            msg_id=f"o{n}",
        )
        await bus.publish(
            s.request_subject("email"),
            request(f"f{n}", thread=ThreadKeys(in_reply_to=(f"<o{n}@acme.example>",))),
            msg_id=f"f{n}",
        )
    async with router(bus_config):
        await until(lambda: _count(bus, 10))
        await settled(bus)
    numbers = await ticket_numbers(bus)
    assert len(numbers) == 10
    for number in numbers:
        found = await ticket(bus, number)
        assert found is not None
        which = found.request_id.removeprefix("o")
        assert found.request_ids == (f"o{which}", f"f{which}")
