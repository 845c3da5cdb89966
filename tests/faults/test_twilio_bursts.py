"""Fault: Twilio answers bursts of 429 and 5xx while the notifier sends dispatch texts; each lands once.

Router and notifier run in-process against a real nats-server and the sandbox, whose /api/faults burst
answers the next Messages.json calls with the listed statuses before anything is recorded. Prints
sent / tickets / SMS / lost / doubled.
"""

from __future__ import annotations

import asyncio
import collections
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.natsserver import free_port
from services.contracts import ServiceRequest
from services.contracts import subjects as s
from services.contracts.requests import Sender, ThreadKeys
from services.notifier import app as notifier
from services.notifier.config import NotifierConfig, TwilioConfig
from services.router import app as router
from services.router.config import RouterConfig
from services.sandbox.app import Sandbox

pytestmark = pytest.mark.slow

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
REQUESTS = 30
MON_1000 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Acme in hours: each request is dispatched at once
ALICE = "+13125550101"
# Two bursts' worth of edge errors, more than one delivery's in-process retries (5) in a row.
BURST = [429, 500, 503, 429, 429, 500, 502, 429, 503, 500, 429, 429, 500, 503, 429, 500, 429, 502]
DISPATCH = re.compile(r"^(SR-\d+) ")


def request(i: int) -> ServiceRequest:
    return ServiceRequest(
        id=f"burst-req-{i:03d}",
        channel="email",
        received_at=MON_1000 + timedelta(seconds=i),
        sender=Sender(email="jane@acme.example"),
        recipient="support@frontdesk.test",
        subject=f"burst-req-{i:03d} printer jammed",
        body=f"Request burst-req-{i:03d}: the printer jams.",
        thread=ThreadKeys(message_id=f"<burst-req-{i}@faults.test>"),
    )


async def test_twilio_bursts_of_429_and_5xx_deliver_each_sms_once(bus_config: BusConfig) -> None:
    clock = ManualClock(MON_1000)
    sandbox = Sandbox(Sandbox.on_free_ports().cfg, clock)
    await sandbox.start()
    bus = await Bus.connect(bus_config, "faults")
    await bus.ensure_topology()
    http = httpx.AsyncClient(timeout=10)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        router_cfg = RouterConfig(http_port=free_port(), policy=str(POLICY), timer_poll=0.05, bus=bus_config)
        notifier_cfg = NotifierConfig(
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
        tasks.append(asyncio.create_task(router.main(router_cfg, stop=stop, clock=clock)))
        tasks.append(asyncio.create_task(notifier.main(notifier_cfg, stop=stop, clock=clock)))
        armed = await http.post(f"{sandbox.url}/api/faults", json={"burst": BURST})
        armed.raise_for_status()
        for i in range(REQUESTS):
            req = request(i)
            await bus.publish(s.request_subject(req.channel), req, msg_id=req.id)
            if i == REQUESTS // 2:
                # A second burst lands mid-stream, while other texts are being retried.
                again = await http.post(f"{sandbox.url}/api/faults", json={"burst": BURST})
                again.raise_for_status()

        async def texts() -> collections.Counter[str]:
            answer = await http.get(f"{sandbox.url}/api/messages")
            answer.raise_for_status()
            counts: collections.Counter[str] = collections.Counter()
            for message in answer.json():
                found = DISPATCH.match(message["body"])
                if message["to"] == ALICE and found:
                    counts[found.group(1)] += 1
            return counts

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        counts = await texts()
        while len(counts) < REQUESTS and loop.time() < deadline:
            await asyncio.sleep(0.2)
            counts = await texts()
        await asyncio.sleep(1.0)  # a late duplicate would show up here
        counts = await texts()
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
    finally:
        stop.set()
        results: list[Any] = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await http.aclose()
        await bus.close()
        await sandbox.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"a service crashed: {failures!r}"
