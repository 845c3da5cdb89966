"""Fault: router, then notifier, killed mid-stream with timers pending; everything happens exactly once.

Router and notifier run in-process on one ManualClock against a real nats-server and the sandbox. A kill
is a task cancelled over and over until it is gone: handlers stop wherever they are, nothing is acked or
flushed, and the fetched batch comes back only after JetStream's ack_wait, as after a SIGKILL. Prints
sent / tickets / SMS / lost / doubled.
"""

from __future__ import annotations

import asyncio
import collections
import re
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig
from services.common.kvview import snapshot
from services.contracts import ServiceRequest, Ticket
from services.contracts import subjects as s
from services.router.routing import TIMER_PREFIX
from services.sandbox.app import Sandbox
from tests.faults.traffic import desk, emailed, texts
from tests.support import until

pytestmark = pytest.mark.slow
IN_HOURS = 30  # Acme (premium) at Monday 10:00 Chicago: dispatched at once, ack timers armed
AFTER_HOURS = 30  # Globex (complimentary) at Monday 21:00: queued with a release timer for Tuesday 08:00
MON_1000 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
MON_2100 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TUE_0801 = datetime(2026, 11, 24, 14, 1, tzinfo=UTC)
TECHS = frozenset({"+13125550101", "+13125550102", "+13125550103"})
# A first dispatch text, not an escalation: "SR-1001 Acme ..." / "SR-1001 EMERGENCY Acme ...".
DISPATCH = re.compile(r"^(SR-\d+)(?: EMERGENCY)? (?!\(escalated\))")
FEED_GAP = 0.04  # seconds between requests: the stream lasts about 2.4 s
WAIT = 150.0  # real seconds: a killed consumer's batch is redelivered after ack_wait (30 s, sender 60 s)


def request(i: int) -> ServiceRequest:
    late = i >= IN_HOURS
    sender = "hank@globex.example" if late else "jane@acme.example"
    return emailed("kill-req", i, sender=sender, at=MON_2100 if late else MON_1000)


async def tickets(bus: Bus) -> list[Ticket]:
    # A watch, not kv.keys(): polled for minutes, keys() would fill the stream's consumer limit.
    return list((await snapshot(bus, s.KV_TICKETS, ">", msgspec.json.Decoder(Ticket).decode)).values())


async def dispatches(http: httpx.AsyncClient, sandbox: Sandbox) -> collections.Counter[str]:
    """First dispatch texts to techs per ticket number, as the sandbox (Twilio) saw them."""
    return await texts(http, sandbox, TECHS, DISPATCH)


async def test_router_then_notifier_killed_with_timers_pending(bus_config: BusConfig) -> None:
    clock = ManualClock(MON_1000)
    async with desk(bus_config, clock) as services:
        sandbox, bus, http = services.sandbox, services.bus, services.http
        start_router, start_notifier, kill = services.start_router, services.start_notifier, services.kill

        async def routed(n: int) -> bool:
            return len(await tickets(bus)) >= n

        async def texted(n: int) -> bool:
            return len(await dispatches(http, sandbox)) >= n

        routing, notifying = start_router(), start_notifier()

        async def feed() -> None:
            # A stream, not a burst: requests keep arriving while the services are killed.
            for i in range(IN_HOURS + AFTER_HOURS):
                req = request(i)
                await bus.publish(s.request_subject(req.channel), req, msg_id=req.id)
                await asyncio.sleep(FEED_GAP)

        feeding = asyncio.create_task(feed())

        # Killed as soon as it has opened a ticket, with most of the stream still to come.
        await until(lambda: routed(1), 30, "the first ticket")
        await kill(routing)
        at_router_kill = len(await tickets(bus))
        routing = start_router()

        await until(lambda: texted(1), 60, "the first dispatch text")
        # Killed while DispatchTickets are queued, ack timers armed and release timers waiting in KV.
        await kill(notifying)
        at_notifier_kill = len(await dispatches(http, sandbox))
        notifying = start_notifier()

        await feeding
        await until(lambda: routed(IN_HOURS + AFTER_HOURS), WAIT, "every ticket")
        await until(lambda: texted(IN_HOURS), WAIT, "every in-hours dispatch text")
        # The queued tickets' release timers: killed once more with them pending, then past the open.
        await kill(routing)
        routing = start_router()
        clock.set(TUE_0801)
        await until(lambda: texted(IN_HOURS + AFTER_HOURS), WAIT, "every dispatch text")
        await asyncio.sleep(2.0)  # a late duplicate would show up here

        found = await tickets(bus)
        per_request = collections.Counter(t.request_id for t in found)
        sent = await dispatches(http, sandbox)
        numbers = {t.number for t in found}
        lost = (IN_HOURS + AFTER_HOURS - len(per_request)) + len(numbers - set(sent))
        doubled = sum(1 for n in per_request.values() if n > 1) + sum(1 for n in sent.values() if n > 1)
        print(
            f"\nservices killed: sent={IN_HOURS + AFTER_HOURS} (in hours {IN_HOURS}, queued {AFTER_HOURS}) "
            f"killed at tickets={at_router_kill} / texts={at_notifier_kill} "
            f"tickets={len(found)} sms={sum(sent.values())} lost={lost} doubled={doubled}"
        )
        # The kills really came mid-stream, with work still to do.
        assert at_router_kill < IN_HOURS + AFTER_HOURS and at_notifier_kill < IN_HOURS
        assert set(per_request) == {request(i).id for i in range(IN_HOURS + AFTER_HOURS)}
        assert lost == 0
        assert doubled == 0
        assert set(sent) == numbers
        left = await snapshot(bus, s.KV_TIMERS, f"{TIMER_PREFIX}>", bytes)
        assert not left, "a release timer left"
