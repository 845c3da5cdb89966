"""Fault: Twilio answers bursts of 429 and 5xx while the notifier sends dispatch texts; each lands once.

Router and notifier run in-process against a real nats-server and the sandbox, whose /api/faults burst
answers the next Messages.json calls with the listed statuses before anything is recorded. Prints
sent / tickets / SMS / lost / doubled.
"""

from __future__ import annotations

import asyncio
import collections
import re
from datetime import UTC, datetime

import pytest

from services.common.clock import ManualClock
from services.common.config import BusConfig
from services.contracts import subjects as s
from tests.faults.traffic import desk, emailed, texts

pytestmark = pytest.mark.slow

REQUESTS = 30
MON_1000 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Acme in hours: each request is dispatched at once
ALICE = "+13125550101"
# Two bursts' worth of edge errors, more than one delivery's in-process retries (5) in a row.
BURST = [429, 500, 503, 429, 429, 500, 502, 429, 503, 500, 429, 429, 500, 503, 429, 500, 429, 502]
DISPATCH = re.compile(r"^(SR-\d+) ")


async def test_twilio_bursts_of_429_and_5xx_deliver_each_sms_once(bus_config: BusConfig) -> None:
    clock = ManualClock(MON_1000)
    async with desk(bus_config, clock) as services:
        sandbox, bus, http = services.sandbox, services.bus, services.http
        services.start_router()
        services.start_notifier()
        armed = await http.post(f"{sandbox.url}/api/faults", json={"burst": BURST})
        armed.raise_for_status()
        for i in range(REQUESTS):
            req = emailed("burst-req", i, sender="jane@acme.example", at=MON_1000)
            await bus.publish(s.request_subject(req.channel), req, msg_id=req.id)
            if i == REQUESTS // 2:
                # A second burst lands mid-stream, while other texts are being retried.
                again = await http.post(f"{sandbox.url}/api/faults", json={"burst": BURST})
                again.raise_for_status()

        async def sent() -> collections.Counter[str]:
            return await texts(http, sandbox, frozenset({ALICE}), DISPATCH)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        counts = await sent()
        while len(counts) < REQUESTS and loop.time() < deadline:
            await asyncio.sleep(0.2)
            counts = await sent()
        await asyncio.sleep(1.0)  # a late duplicate would show up here
        counts = await sent()
        left = (await http.post(f"{sandbox.url}/api/faults", json={"burst": []})).json()["burst"]
        lost = REQUESTS - len(counts)
        doubled = sum(1 for n in counts.values() if n > 1)
        print(
            f"\ntwilio bursts: sent={REQUESTS} errors_injected={2 * len(BURST)} unused={len(left)} "
            f"sms={sum(counts.values())} lost={lost} doubled={doubled}"
        )
        assert left == []  # every injected error was actually met by a send
        assert lost == 0
        assert doubled == 0
