"""Fault: router, then notifier, killed mid-stream with timers pending; everything happens exactly once.

Router and notifier run in-process on one ManualClock against a real nats-server and the sandbox. A kill
is a task cancelled over and over until it is gone: handlers stop wherever they are, nothing is acked or
flushed, and the fetched batch comes back only after JetStream's ack_wait, as after a SIGKILL. Prints
sent / tickets / SMS / lost / doubled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.kvview import snapshot
from services.common.natsserver import free_port
from services.contracts import ServiceRequest, Ticket
from services.contracts import subjects as s
from services.contracts.requests import Sender, ThreadKeys
from services.notifier import app as notifier
from services.notifier.config import NotifierConfig, TwilioConfig
from services.router import app as router
from services.router.config import RouterConfig
from services.router.routing import TIMER_PREFIX
from services.sandbox.app import Sandbox
from tests.support import until

pytestmark = pytest.mark.slow
POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
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
    return ServiceRequest(
        id=f"kill-req-{i:03d}",
        channel="email",
        received_at=(MON_2100 if late else MON_1000) + timedelta(seconds=i),
        sender=Sender(email=sender),
        recipient="support@frontdesk.test",
        subject=f"kill-req-{i:03d} printer jammed",
        body=f"Request kill-req-{i:03d}: the printer jams.",
        thread=ThreadKeys(message_id=f"<kill-req-{i}@faults.test>"),
    )


async def tickets(bus: Bus) -> list[Ticket]:
    # A watch, not kv.keys(): polled for minutes, keys() would fill the stream's consumer limit.
    return list((await snapshot(bus, s.KV_TICKETS, ">", msgspec.json.Decoder(Ticket).decode)).values())


async def dispatches(http: httpx.AsyncClient, sandbox: Sandbox) -> collections.Counter[str]:
    """First dispatch texts to techs per ticket number, as the sandbox (Twilio) saw them."""
    answer = await http.get(f"{sandbox.url}/api/messages")
    answer.raise_for_status()
    counts: collections.Counter[str] = collections.Counter()
    for message in answer.json():
        found = DISPATCH.match(message["body"])
        if message["to"] in TECHS and found:
            counts[found.group(1)] += 1
    return counts


async def kill(task: asyncio.Task[None]) -> None:
    """Cancel until gone: a graceful stop is never requested, so in-flight work is simply dropped."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    with contextlib.suppress(BaseException):
        task.result()


async def test_router_then_notifier_killed_with_timers_pending(bus_config: BusConfig) -> None:
    clock = ManualClock(MON_1000)
    sandbox = Sandbox(Sandbox.on_free_ports().cfg, clock)
    await sandbox.start()
    bus = await Bus.connect(bus_config, "faults")
    await bus.ensure_topology()
    http = httpx.AsyncClient(timeout=10)
    stop = asyncio.Event()
    running: list[asyncio.Task[None]] = []

    def start_router() -> asyncio.Task[None]:
        cfg = RouterConfig(http_port=free_port(), policy=str(POLICY), timer_poll=0.05, bus=bus_config)
        task = asyncio.create_task(router.main(cfg, stop=stop, clock=clock))
        running.append(task)
        return task

    def start_notifier() -> asyncio.Task[None]:
        cfg = NotifierConfig(
            http_port=free_port(),
            relay_port=sandbox.smtp_port,
            twilio=TwilioConfig(
                account_sid=sandbox.cfg.account_sid,
                auth_token=sandbox.cfg.auth_token,
                from_="+13125550199",
                api_base=sandbox.url,
            ),
            thread_secret=Secret("faults-secret"),
            policy=str(POLICY),
            bus=bus_config,
            retry_base=0.01,
            timer_poll=0.05,
        )
        task = asyncio.create_task(notifier.main(cfg, stop=stop, clock=clock))
        running.append(task)
        return task

    async def routed(n: int) -> bool:
        return len(await tickets(bus)) >= n

    async def texted(n: int) -> bool:
        return len(await dispatches(http, sandbox)) >= n

    try:
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
    finally:
        stop.set()
        results: list[Any] = await asyncio.wait_for(
            asyncio.gather(*(t for t in running if not t.done()), return_exceptions=True), 30
        )
        await http.aclose()
        await bus.close()
        await sandbox.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"a service crashed: {failures!r}"
