"""Turn raw RFC 5322 bytes into a parsed support email: text, trimmed body, sender, thread keys, nature."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from services.contracts.requests import Nature, Priority
from services.contracts.threading import find_subject_token, verify_message_id
from services.intake_email.mail.charsets import decode_bytes
from services.intake_email.mail.classification import bounced_ids, classify
from services.intake_email.mail.headers import header_text, message_ids, parse_message, sender_address
from services.intake_email.mail.mime import ParsedAttachment, as_received, html_to_text, walk_parts
from services.intake_email.mail.quotes import trim_reply
from services.policy.matching import emergency_hits

DEFAULT_EMERGENCY = ("down", "outage", "urgent", "emergency", "offline", "not working")


@dataclass(frozen=True)
class ParsedEmail:
    request_id: str
    message_id: str
    sender_email: str | None
    sender_name: str | None
    subject: str
    body: str
    full_text: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    ticket_token: str | None
    token_signed: bool
    token_forged: bool
    references_ours: bool
    nature: Nature
    priority_hint: Priority
    hints: tuple[str, ...]
    attachments: tuple[ParsedAttachment, ...] = field(default=())


def parse(
    raw: bytes, *, secret: bytes, emergency_keywords: tuple[str, ...] = DEFAULT_EMERGENCY
) -> ParsedEmail:
    """Parse raw bytes; never raises on malformed input (the mail must not be lost)."""
    msg = parse_message(raw)
    subject = header_text(msg, "Subject")
    sender_email, sender_name = sender_address(msg)
    try:
        # The line ending of the first line: what an embedded message is re-serialized with.
        first = raw.find(b"\n")
        linesep = "\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else "\n"
        plain, html, attachments = walk_parts(msg, linesep)
        attachments = as_received(raw, msg, attachments, linesep)
    except Exception:
        plain, html, attachments = decode_bytes(raw, None), "", []
    full_text = plain.strip() if plain.strip() else html_to_text(html)
    message_id_values = message_ids(header_text(msg, "Message-ID"))
    message_id = (
        message_id_values[0]
        if message_id_values
        else f"<{hashlib.sha256(raw).hexdigest()[:32]}@frontdesk.invalid>"
    )
    date: datetime | None = None
    try:
        date_value = header_text(msg, "Date")
        if date_value:
            date = parsedate_to_datetime(date_value)
            date = date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)
    except Exception:
        date = None
    in_reply_to = message_ids(header_text(msg, "In-Reply-To"))
    references = message_ids(header_text(msg, "References"))
    nature = classify(msg, sender_email, subject)
    if nature == "bounce":
        # A bounce is about a message we sent: its Message-ID (inside the DSN, or quoted by a vendor
        # format) threads the bounce to the original ticket instead of opening a new one.
        references = references + tuple(i for i in bounced_ids(msg, full_text) if i not in references)
    token = find_subject_token(subject, secret)
    references_ours = any(verify_message_id(ref, secret) for ref in in_reply_to + references)
    hits = emergency_hits(subject, emergency_keywords)
    request_id = "em-" + hashlib.sha256(f"{message_id}{sender_email or ''}".encode()).hexdigest()[:32]
    return ParsedEmail(
        request_id=request_id,
        message_id=message_id,
        sender_email=sender_email,
        sender_name=sender_name,
        subject=subject,
        body=trim_reply(full_text),
        full_text=full_text,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        # A token whose signature does not verify is no token at all (not even a bare one).
        ticket_token=token.ticket_number if token and not token.forged else None,
        token_signed=bool(token and token.signed),
        token_forged=bool(token and token.forged),
        references_ours=references_ours,
        nature=nature,
        priority_hint="emergency" if hits else "normal",
        hints=tuple(f"keyword:{k}" for k in hits),
        attachments=tuple(attachments),
    )
