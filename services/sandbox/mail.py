"""SMTP sink standing in for the outbound mail relay: every accepted message is recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


def summary(raw: bytes, mail_from: str, rcpt_tos: list[str], received: datetime) -> dict[str, Any]:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if isinstance(part, EmailMessage) else ""
    return {
        "from": mail_from,
        "to": list(rcpt_tos),
        "subject": str(parsed.get("Subject", "")),
        "headers": {key: str(value) for key, value in parsed.items()},
        "body": text.replace("\r\n", "\n"),  # SMTP carries CRLF; show text as written
        "time": received.isoformat(),
    }


class MailSink:
    """aiosmtpd handler: accept, parse, append to `emails`."""

    def __init__(self, emails: list[dict[str, Any]], now: Callable[[], datetime]) -> None:
        self.emails = emails
        self.now = now

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            record = summary(raw, envelope.mail_from or "", list(envelope.rcpt_tos), self.now())
        except Exception as exc:  # a relay answers bad mail with a code, never a crash
            return f"554 5.6.0 unparseable message: {type(exc).__name__}"
        self.emails.append(record)
        return "250 2.0.0 Ok: queued"
