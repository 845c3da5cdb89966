"""The router's release timers against a real nats-server: polling leaks nothing and never wedges.

Regression for the fault suite's "queued tickets never released after a restart": every poll listed
fd_timers with `kv.keys()`, and each listing left an ephemeral consumer on the server for five minutes,
until the stream's consumer limit answered every further listing with BadRequestError 10026.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import BadRequestError

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig
from services.contracts import DispatchTicket, Sender, ServiceRequest
from services.contracts import subjects as s
from services.policy.load import load_policy
from services.router import routing
from services.router.app import Router, main
from services.router.config import RouterConfig
from tests.support import serving, stream_messages, until

POLICY = str(Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml")
FRIDAY_18 = datetime(2026, 11, 21, 0, tzinfo=UTC)  # 18:00 CST: Globex (complimentary) is queued
MONDAY_08 = datetime(2026, 11, 23, 14, tzinfo=UTC)  # the desk opens: the release instant
TIMERS_STREAM = f"KV_{s.KV_TIMERS}"
CONSUMER_LIMIT = 10026  # JetStream: "maximum consumers limit reached"


def queued_request(rid: str) -> ServiceRequest:
    return ServiceRequest(
        id=rid,
        channel="email",
        received_at=FRIDAY_18,
        sender=Sender(email="hank@globex.example"),
        body="Printer jammed",
    )


async def dispatched(bus: Bus) -> list[DispatchTicket]:
    return [
        msgspec.json.decode(msg.data or b"", type=DispatchTicket)
        for msg in await stream_messages(bus, s.STREAM_NOTIFY)
        if (msg.headers or {}).get("Nats-Msg-Id", "").startswith("dispatch:")
    ]


async def queue_one(bus: Bus, bus_config: BusConfig, clock: ManualClock) -> None:
    """Open one queued ticket through the real consumer path, then stop that router."""
    cfg = RouterConfig(http_port=0, policy=POLICY, timer_poll=0.1, bus=bus_config)

    async def armed() -> bool:
        raw, _ = await bus.kv_get(s.KV_TIMERS, routing.timer_key("SR-1001"))
        return raw is not None

    async with serving(main, cfg, clock=clock):
        await bus.publish(s.request_subject("email"), queued_request("q1"), msg_id="q1")
        await until(armed)


async def test_polling_timers_many_times_leaves_no_consumers_and_still_releases(
    bus: Bus, bus_config: BusConfig
) -> None:
    clock = ManualClock(FRIDAY_18)
    await queue_one(bus, bus_config, clock)
    idle = Router(bus, load_policy(POLICY), clock)
    try:
        # More polls than the server's per-stream consumer limit (1000) would survive if each one
        # left a consumer behind: the old code failed here with BadRequestError near poll 500.
        for _ in range(600):
            assert await idle.release_due() == 0
            assert await idle.next_due() == MONDAY_08
        info = await bus.js.stream_info(TIMERS_STREAM)
        assert (info.state.consumer_count or 0) <= 1
        clock.set(MONDAY_08)
        assert await idle.release_due() == 1
        assert await idle.next_due() is None
    finally:
        await idle.close()
    assert [d.ticket.number for d in await dispatched(bus)] == ["SR-1001"]
    assert (await dispatched(bus))[0].released_from_queue
    raw, _ = await bus.kv_get(s.KV_TIMERS, routing.timer_key("SR-1001"))
    assert raw is None


async def fill_consumers(bus: Bus) -> list[str]:
    """Take every consumer slot the server allows on the timers stream (no limit is assumed)."""
    names: list[str] = []
    for n in range(20_000):
        name = f"filler-{n}"
        try:
            await bus.js.add_consumer(
                TIMERS_STREAM, ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, inactive_threshold=600)
            )
        except BadRequestError as exc:
            assert exc.err_code == CONSUMER_LIMIT, exc
            return names
        names.append(name)
    raise AssertionError("the server never refused a consumer")


async def test_timer_loop_recovers_after_the_server_refused_it(
    bus: Bus, bus_config: BusConfig, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(FRIDAY_18)
    await queue_one(bus, bus_config, clock)
    fillers = await fill_consumers(bus)
    stop = asyncio.Event()
    router = Router(bus, load_policy(POLICY), clock)
    loop = asyncio.create_task(router.run_timers(stop, 0.05))
    try:
        # Someone else holds every slot: the loop cannot follow the timers and says so...
        with caplog.at_level(logging.WARNING, logger="services.router.app"):

            async def refused() -> bool:
                return any("timer" in r.getMessage() for r in caplog.records)

            await until(refused)
        assert not loop.done()
        # ...then the slots come back, and the next poll (woken by the clock) releases the ticket.
        for name in fillers:
            await bus.js.delete_consumer(TIMERS_STREAM, name)
        clock.set(MONDAY_08)

        async def released() -> bool:
            clock.set(MONDAY_08 + timedelta(seconds=1))  # wake a backed-off loop without waiting it out
            return len(await dispatched(bus)) == 1

        await until(released)
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop, 15)
        await router.close()
    assert loop.done() and loop.exception() is None
    assert [d.ticket.number for d in await dispatched(bus)] == ["SR-1001"]
