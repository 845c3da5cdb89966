"""The transport seam: an email reaches the SMTP relay introduced by our own mail domain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiosmtpd.smtp import SMTP, Envelope, Session
from twilio.rest import Client as TwilioClient

from services.common.clock import ManualClock
from services.common.config import Secret
from services.common.natsserver import free_port
from services.contracts import SendEmail
from services.notifier.config import NotifierConfig
from services.notifier.transport import Transport

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


class Relay:
    """A bare SMTP relay that keeps the EHLO name and the recipients of each message."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.seen.append((str(session.host_name), list(envelope.rcpt_tos)))
        return "250 OK"


async def test_email_goes_to_the_relay_with_our_mail_domain_as_ehlo() -> None:
    relay, port = Relay(), free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(relay, hostname="relay.test"), "127.0.0.1", port)
    try:
        cfg = NotifierConfig(relay_port=port, mail_domain="desk.example", thread_secret=Secret("s" * 32))
        transport = Transport(cfg, ManualClock(NOW), TwilioClient("AC0", "unused"))
        message = SendEmail(
            key="k1",
            to="jane@acme.example",
            subject="Update",
            body="On its way.",
            purpose="client_update",
            created_at=NOW,
            ticket_number="SR-1042",
        )
        msg_id = await transport.email(message)
    finally:
        server.close()
        await server.wait_closed()
    assert relay.seen == [("desk.example", ["jane@acme.example"])]
    assert msg_id.endswith("@desk.example>")
