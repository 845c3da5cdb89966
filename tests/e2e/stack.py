"""The whole stack in-process (sandbox, both intakes, router, notifier) and the scenarios' cast."""

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
from services.common.natsserver import free_ports
from services.contracts import subjects as s
from services.intake_email import app as intake_email
from services.intake_email.config import SmtpConfig
from services.intake_voice import app as intake_voice
from services.intake_voice.config import VoiceConfig
from services.notifier import app as notifier
from services.notifier.config import NotifierConfig, TwilioConfig
from services.router import app as router
from services.router.config import RouterConfig
from services.sandbox.app import Sandbox
from tests.intake_email.senders import AUTHSERV_ID, passed
from tests.support import settled, until

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
SECRET = "e2e-thread-secret"
SUPPORT = "support@frontdesk.test"
TWILIO_FROM = "+13125550199"
# Monday 23 Nov 2026, 09:00 in Chicago: scenarios move the clock to their own instant before acting.
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
DURABLES = ((s.STREAM_REQUESTS, "router"), *s.NOTIFIER_DURABLES)
ALICE, BOB, CAROL = "+13125550101", "+13125550102", "+13125550103"
JANE = "+13125550150"  # Acme: premium, primary tech alice, prefers SMS
HANK = "+13125550160"  # Globex: complimentary, rotates over m365 techs (bob excluded)
# Chicago is UTC-6 in November; 23 Nov 2026 is a Monday. On call that week (rotation from 5 Jan): bob.
MON_1000 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
MON_2100 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TUE_0800 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


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
        """Every durable consumer has nothing pending, three times over (a handler may publish onward)."""
        await settled(self.bus, DURABLES)


async def recipients(stack: Stack) -> list[str]:
    return sorted(m["to"] for m in await stack.messages())


async def sms_for(stack: Stack, phone: str, count: int = 1) -> list[dict[str, Any]]:
    """The SMS sent to `phone`, once there are at least `count` of them."""
    return await _at_least(count, lambda: stack.sms_to(phone), f"{count} SMS to {phone}")


async def emails_for(stack: Stack, address: str, count: int = 1) -> list[dict[str, Any]]:
    """The emails sent to `address`, once there are at least `count` of them."""
    return await _at_least(count, lambda: stack.emails_to(address), f"{count} emails to {address}")


async def _at_least(
    count: int, sent: Callable[[], Awaitable[list[dict[str, Any]]]], what: str
) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]]:
        found = await sent()
        return found if len(found) >= count else []

    found: list[dict[str, Any]] = await until(enough, timeout=10, what=what)
    return found


async def acknowledged_email_ticket(stack: Stack) -> dict[str, Any]:
    """Scenario 1's opening: Jane emails at 10:00 on a Monday; alice is texted, Jane acknowledged."""
    stack.clock.set(MON_1000)
    await stack.mail("jane@acme.example", "Printer on floor 2 jams", "It jams on every second page.")
    await sms_for(stack, ALICE)
    return (await emails_for(stack, "jane@acme.example"))[0]


@contextlib.asynccontextmanager
async def running(
    bus_config: BusConfig, service_bus_config: Callable[[str], BusConfig], folder: Path
) -> AsyncIterator[Stack]:
    """Each service runs its real main() as its own bus user, as in production; the scenario's bus is ops."""
    clock = ManualClock(START)
    stop = asyncio.Event()
    smtp_port, smtp_http, voice_port, voice_http, router_http, notifier_http = free_ports(6)
    voice_base = f"http://127.0.0.1:{voice_port}"
    sandbox = Sandbox(Sandbox.on_free_ports(webhook_base=voice_base).cfg, clock)
    await sandbox.start()
    bus = await Bus.connect(bus_config, "e2e")
    await bus.ensure_topology()
    tasks: list[asyncio.Task[None]] = []
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
        voice_cfg = VoiceConfig(
            port=voice_port,
            http_port=voice_http,
            public_url=voice_base,
            spool_dir=str(folder / "voice-spool"),
            policy=str(POLICY),
            auth_token=sandbox.cfg.auth_token,
            bus=service_bus_config("intake_voice"),
        )
        tasks.append(asyncio.create_task(intake_voice.main(voice_cfg, stop=stop, clock=clock)))
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
        # intake_voice answers calls before its bus connects (it spools meanwhile); scenarios start
        # once it is connected, so what they publish is not waiting for a respool.
        await until(lambda: ready(http, f"http://127.0.0.1:{voice_http}/readyz"), 10, "intake_voice ready")
        yield Stack(clock=clock, sandbox=sandbox, bus=bus, smtp_port=smtp_port, http=http)
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        await http.aclose()
        await bus.close()
        await sandbox.stop()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"a service crashed: {failures!r}"


async def ready(http: httpx.AsyncClient, url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await http.get(url)).status_code == 200
    return False


@pytest.fixture
async def stack(
    bus_config: BusConfig, service_bus_config: Callable[[str], BusConfig], tmp_path: Path
) -> AsyncIterator[Stack]:
    """The whole stack for one test (a fixture: modules outside tests/e2e import it by name)."""
    async with running(bus_config, service_bus_config, tmp_path) as whole:
        yield whole
