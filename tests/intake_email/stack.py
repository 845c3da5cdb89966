"""What the SMTP intake's tests share: a config on a test bus, a running intake, an SMTP client."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage

import msgspec

from services.common.bus import Bus
from services.common.config import BusConfig, Secret
from services.common.natsserver import free_port
from services.contracts import ServiceRequest
from services.contracts import subjects as s
from services.intake_email.app import main
from services.intake_email.config import SmtpConfig
from tests.intake_email.senders import AUTHSERV_ID, passed
from tests.support import serving, stream_messages

SECRET = "test-thread-secret"
SUPPORT = "support@frontdesk.test"


def config(bus_config: BusConfig, **changes: object) -> SmtpConfig:
    base = SmtpConfig(
        port=free_port(),
        http_port=free_port(),
        publish_timeout=1.0,
        thread_secret=Secret(SECRET),
        sender_auth="upstream",
        authserv_id=AUTHSERV_ID,
        bus=msgspec.structs.replace(bus_config, publish_timeout=1.0),
    )
    return msgspec.structs.replace(base, **changes)


@contextlib.asynccontextmanager
async def running(cfg: SmtpConfig) -> AsyncIterator[SmtpConfig]:
    listening = asyncio.Event()
    async with serving(main, cfg, stop_within=10, listening=listening):
        await asyncio.wait_for(listening.wait(), 10)
        yield cfg


def _exchange(port: int, raw: bytes, rcpts: list[str]) -> list[tuple[int, bytes]]:
    """MAIL, RCPT..., DATA; the reply to every step (DATA only when a recipient was accepted)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        replies = [client.mail("client@example.com")]
        rcpt_replies = [client.rcpt(r) for r in rcpts]
        replies += rcpt_replies
        if any(code == 250 for code, _ in rcpt_replies):
            # smtplib sends bytes as given; a real MTA puts CRLF line endings on the wire.
            replies.append(client.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
        return replies


async def send(port: int, raw: bytes, rcpts: list[str] | None = None) -> list[tuple[int, bytes]]:
    return await asyncio.to_thread(_exchange, port, raw, rcpts or [SUPPORT])


def message(
    subject: str = "Printer not working", body: str = "Hello, the printer is jammed.", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = passed("alice@example.com")
    msg["From"] = "Alice Client <alice@example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("message_id", "<m1@example.com>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


async def stored(bus: Bus) -> list[ServiceRequest]:
    decoder = msgspec.json.Decoder(ServiceRequest)
    out = []
    for raw in await stream_messages(bus, s.STREAM_REQUESTS):
        assert raw.data is not None
        out.append(decoder.decode(raw.data))
    return out
