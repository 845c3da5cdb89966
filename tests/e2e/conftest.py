"""The whole stack in-process: nats-server, sandbox, intake_email, intake_voice, router, notifier."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.http import HttpServer
from services.common.natsserver import free_ports
from services.contracts import subjects as s
from services.intake_email import app as intake_email
from services.intake_email.config import SmtpConfig
from services.intake_voice.app import Voice, build_app
from services.intake_voice.config import VoiceConfig
from services.intake_voice.outbox import Outbox
from services.intake_voice.spool import Spool
from services.notifier import app as notifier
from services.notifier.config import NotifierConfig, TwilioConfig
from services.policy.load import load_policy
from services.router import app as router
from services.router.config import RouterConfig
from services.sandbox.app import Sandbox
from tests.intake_email.senders import AUTHSERV_ID, passed

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
SECRET = "e2e-thread-secret"
SUPPORT = "support@frontdesk.test"
TWILIO_FROM = "+13125550199"
# Monday 23 Nov 2026, 09:00 in Chicago: scenarios move the clock to their own instant before acting.
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@dataclass
class Stack:
    """Handles a scenario needs: the shared clock, the sandbox (ledger + driver API) and the bus."""

    clock: ManualClock
    sandbox: Sandbox
    bus: Bus
    smtp_port: int
    http: httpx.AsyncClient

    async def messages(self) -> list[dict[str, Any]]:
        answer = await self.http.get(f"{self.sandbox.url}/api/messages")
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    async def emails(self) -> list[dict[str, Any]]:
        answer = await self.http.get(f"{self.sandbox.url}/api/emails")
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    async def sms_to(self, phone: str) -> list[dict[str, Any]]:
        return [m for m in await self.messages() if m["to"] == phone]

    async def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [e for e in await self.emails() if address in e["to"]]

    async def call(self, caller: str, digits: list[str]) -> list[dict[str, Any]]:
        """Drive a whole call through the sandbox; the answer is every webhook exchange, in order."""
        answer = await self.http.post(
            f"{self.sandbox.url}/api/inbound/call", json={"from": caller, "digits": digits}, timeout=20
        )
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    async def text(self, phone: str, body: str) -> dict[str, Any]:
        answer = await self.http.post(
            f"{self.sandbox.url}/api/inbound/sms", json={"from": phone, "body": body}
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    async def fault(self, phone: str, error_code: int) -> None:
        answer = await self.http.post(
            f"{self.sandbox.url}/api/faults", json={"number": phone, "error_code": error_code}
        )
        answer.raise_for_status()

    async def mail(
        self, sender: str, subject: str, body: str, *, authenticated: bool = True, **headers: str
    ) -> None:
        message = EmailMessage()
        if authenticated:
            # What the organisation's relay adds once DMARC passed (FRONTDESK_SMTP_SENDER_AUTH=upstream).
            message["Authentication-Results"] = passed(sender.rsplit("<", 1)[-1].rstrip(">"))
        message["From"] = sender
        message["To"] = SUPPORT
        message["Subject"] = subject
        for name, value in headers.items():
            message[name.replace("_", "-")] = value
        message.set_content(body)

        def deliver() -> None:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
                client.send_message(message)

        # smtplib blocks; the services answering it share this event loop.
        await asyncio.to_thread(deliver)

    async def settled(self) -> None:
        """Every durable consumer has nothing pending, twice over (a handler may publish onward)."""
        durables = (
            (s.STREAM_REQUESTS, "router"),
            (s.STREAM_NOTIFY, "notifier"),
            (s.STREAM_REPLIES, "notifier-replies"),
            (s.STREAM_OUTBOX, "notifier-sender"),
        )
        for _ in range(3):
            for stream, durable in durables:
                for _ in range(100):
                    with contextlib.suppress(Exception):
                        if await self.bus.pending(stream, durable) == 0:
                            break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, for at most `timeout` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack(
    bus_config: BusConfig, service_bus_config: Callable[[str], BusConfig], tmp_path: Path
) -> AsyncIterator[Stack]:
    """Each service runs as its own bus user, as in production; the scenario's bus is ops."""
    clock = ManualClock(START)
    stop = asyncio.Event()
    smtp_port, smtp_http, voice_port, router_http, notifier_http = free_ports(5)
    voice_base = f"http://127.0.0.1:{voice_port}"
    sandbox = Sandbox(Sandbox.on_free_ports(webhook_base=voice_base).cfg, clock)
    await sandbox.start()
    bus = await Bus.connect(bus_config, "e2e")
    await bus.ensure_topology()
    tasks: list[asyncio.Task[None]] = []
    voice_server: HttpServer | None = None
    voice_bus: Bus | None = None
    http = httpx.AsyncClient(timeout=10)
    try:
        listening = asyncio.Event()
        email_cfg = SmtpConfig(
            port=smtp_port,
            http_port=smtp_http,
            thread_secret=Secret(SECRET),
            sender_auth="upstream",
            authserv_id=AUTHSERV_ID,
            bus=service_bus_config("intake_email"),
        )
        tasks.append(
            asyncio.create_task(intake_email.main(email_cfg, stop=stop, clock=clock, listening=listening))
        )
        # intake_voice.main takes no clock, so assemble the same parts it does with ours injected.
        voice_cfg = VoiceConfig(
            port=voice_port,
            public_url=voice_base,
            spool_dir=str(tmp_path / "voice-spool"),
            policy=str(POLICY),
            auth_token=sandbox.cfg.auth_token,
            bus=service_bus_config("intake_voice"),
        )
        voice_bus = await Bus.connect(voice_cfg.bus, "intake_voice")
        outbox = Outbox(Spool(voice_cfg.spool_dir), voice_cfg.publish_timeout, voice_bus)
        voice = Voice(cfg=voice_cfg, policy=load_policy(voice_cfg.policy), outbox=outbox, clock=clock)
        voice_server = HttpServer(build_app(voice), voice_cfg.host, voice_cfg.port)
        await voice_server.start()
        tasks.append(asyncio.create_task(outbox.run(stop, voice_cfg.respool_interval)))
        router_cfg = RouterConfig(
            http_port=router_http, policy=str(POLICY), timer_poll=0.05, bus=service_bus_config("router")
        )
        tasks.append(asyncio.create_task(router.main(router_cfg, stop=stop, clock=clock)))
        notifier_cfg = NotifierConfig(
            http_port=notifier_http,
            relay_port=sandbox.smtp_port,
            twilio=TwilioConfig(
                account_sid=sandbox.cfg.account_sid,
                auth_token=sandbox.cfg.auth_token,
                from_=TWILIO_FROM,
                api_base=sandbox.url,
            ),
            thread_secret=Secret(SECRET),
            policy=str(POLICY),
            bus=service_bus_config("notifier"),
            retry_base=0.01,
            timer_poll=0.05,
            status_callback=f"{voice_base}/twilio/sms/status",
        )
        tasks.append(asyncio.create_task(notifier.main(notifier_cfg, stop=stop, clock=clock)))
        await asyncio.wait_for(listening.wait(), 10)
        yield Stack(clock=clock, sandbox=sandbox, bus=bus, smtp_port=smtp_port, http=http)
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        if voice_server is not None:
            await voice_server.stop()
        await http.aclose()
        if voice_bus is not None:
            await voice_bus.close()
        await bus.close()
        await sandbox.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"a service crashed: {failures!r}"
