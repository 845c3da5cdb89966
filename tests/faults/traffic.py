"""The faults' traffic: numbered emails, requests and signed texts, the services' settings, the counts."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import msgspec
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.kvview import snapshot
from services.common.natsserver import free_port
from services.common.process import ROOT
from services.contracts import ServiceRequest, Ticket
from services.contracts import subjects as s
from services.contracts.requests import Sender, ThreadKeys
from services.notifier import app as notifier
from services.router import app as router
from services.router.config import RouterConfig
from services.sandbox.app import Sandbox
from tests.intake_email.senders import AUTHSERV_ID, client_email
from tests.notifier.stack import notifier_config

TOKEN = "faults-token"
THREAD_SECRET = "faults-secret"  # the processes' and the in-process notifier's: its signed replies verify
POLICY = str(ROOT / "deploy" / "policy.example.yaml")
MARK = re.compile(r"fault-(?:em|sms)-\d{4}")


def email(i: int) -> EmailMessage:
    return client_email("fault-em", i)


def stack_env(tmp_path: Path, *, smtp_port: int, voice_port: int, router_http: int) -> dict[str, str]:
    """Settings of router, intake_email and intake_voice run as processes (add each one's bus user)."""
    return {
        **os.environ,
        "FRONTDESK_ENV": "development",
        "FRONTDESK_POLICY": POLICY,
        "FRONTDESK_THREAD_SECRET": THREAD_SECRET,
        "FRONTDESK_TWILIO_AUTH_TOKEN": TOKEN,
        "FRONTDESK_SMTP_PORT": str(smtp_port),
        "FRONTDESK_SMTP_HTTP_PORT": str(free_port()),
        "FRONTDESK_SMTP_RATE_PER_MINUTE": "1000000",
        "FRONTDESK_SMTP_MAX_SESSIONS_PER_IP": "1000",
        "FRONTDESK_SMTP_SENDER_AUTH": "upstream",
        "FRONTDESK_SMTP_AUTHSERV_ID": AUTHSERV_ID,
        "FRONTDESK_SMTP_PUBLISH_TIMEOUT": "2",
        "FRONTDESK_ROUTER_HTTP_PORT": str(router_http),
        "FRONTDESK_VOICE_PORT": str(voice_port),
        "FRONTDESK_VOICE_HTTP_PORT": str(free_port()),  # intake_voice: /metrics and /readyz
        "FRONTDESK_VOICE_PUBLIC_URL": f"http://127.0.0.1:{voice_port}",
        "FRONTDESK_VOICE_SPOOL_DIR": str(tmp_path / "spool"),
    }


def signed_sms(validator: RequestValidator, voice: str, j: int) -> tuple[str, dict[str, str], str]:
    """(marker, form, X-Twilio-Signature) of inbound SMS number `j`."""
    marker = f"fault-sms-{j:04d}"
    params = {
        "MessageSid": f"SM{j:032x}", "AccountSid": "AC" + "0" * 32, "From": "+13125550999",
        "To": "+13125550100", "Body": f"{marker} printer down", "NumMedia": "0",
    }  # fmt: skip
    return marker, params, validator.compute_signature(f"{voice}/twilio/sms", params)


async def count_tickets(bus: Bus) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with contextlib.suppress(Exception):
        # A watch, not kv.keys(): polled for minutes, keys() would fill the stream's consumer limit.
        for ticket in (await snapshot(bus, s.KV_TICKETS, ">", msgspec.json.Decoder(Ticket).decode)).values():
            found = MARK.search(f"{ticket.subject} {ticket.summary}")
            if found:
                counts[found.group()] += 1
    return counts


def emailed(tag: str, i: int, *, sender: str, at: datetime) -> ServiceRequest:
    """Request number `i` of a stream as intake_email publishes it, `tag-NNN` in its id and subject."""
    return ServiceRequest(
        id=f"{tag}-{i:03d}",
        channel="email",
        received_at=at + timedelta(seconds=i),
        sender=Sender(email=sender),
        recipient="support@frontdesk.test",
        subject=f"{tag}-{i:03d} printer jammed",
        body=f"Request {tag}-{i:03d}: the printer jams.",
        thread=ThreadKeys(message_id=f"<{tag}-{i}@faults.test>"),
    )


def router_config(bus_config: BusConfig) -> RouterConfig:
    """A router run in the test's process, its timers polled often (a ManualClock moves them)."""
    return RouterConfig(http_port=free_port(), policy=POLICY, timer_poll=0.05, bus=bus_config)


@dataclass
class Desk:
    """Router and notifier in the test's process on one ManualClock, texting through the sandbox."""

    bus_config: BusConfig
    clock: ManualClock
    sandbox: Sandbox
    bus: Bus
    http: httpx.AsyncClient
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    running: list[asyncio.Task[None]] = field(default_factory=list)

    def start_router(self) -> asyncio.Task[None]:
        return self._start(router.main(router_config(self.bus_config), stop=self.stop, clock=self.clock))

    def start_notifier(self) -> asyncio.Task[None]:
        cfg = notifier_config(self.bus_config, self.sandbox, thread_secret=Secret(THREAD_SECRET))
        return self._start(notifier.main(cfg, stop=self.stop, clock=self.clock))

    async def kill(self, task: asyncio.Task[None]) -> None:
        """Cancel until gone: a graceful stop is never requested, so in-flight work is simply dropped."""
        self.running.remove(task)
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
        with contextlib.suppress(BaseException):
            task.result()

    def _start(self, main: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(main)
        self.running.append(task)
        return task


@contextlib.asynccontextmanager
async def desk(bus_config: BusConfig, clock: ManualClock) -> AsyncIterator[Desk]:
    """A started sandbox and bus; on the way out every service not killed stops, and none crashed."""
    sandbox = Sandbox(Sandbox.on_free_ports().cfg, clock)
    await sandbox.start()
    bus = await Bus.connect(bus_config, "faults")
    await bus.ensure_topology()
    running = Desk(bus_config, clock, sandbox, bus, httpx.AsyncClient(timeout=10))
    try:
        yield running
    finally:
        running.stop.set()
        results: list[Any] = await asyncio.wait_for(
            asyncio.gather(*running.running, return_exceptions=True), 30
        )
        await running.http.aclose()
        await bus.close()
        await sandbox.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"a service crashed: {failures!r}"


async def texts(
    http: httpx.AsyncClient, sandbox: Sandbox, to: frozenset[str], first: re.Pattern[str]
) -> collections.Counter[str]:
    """Texts to `to` whose body matches `first`, per ticket number (its group 1), as Twilio saw them."""
    answer = await http.get(f"{sandbox.url}/api/messages")
    answer.raise_for_status()
    counts: collections.Counter[str] = collections.Counter()
    for message in answer.json():
        found = first.match(message["body"])
        if message["to"] in to and found:
            counts[found.group(1)] += 1
    return counts
