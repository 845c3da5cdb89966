"""Machine mail: bounces, out-of-office replies and other automatic messages, and what a bounce threads to."""

from __future__ import annotations

import re
from email.message import Message

from services.contracts.requests import Nature
from services.intake_email.mail.headers import header_text, message_ids, raw_text
from services.intake_email.mail.mime import embedded_bytes

_OOO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?reply|abwesenheit|absence|"
    r"fuera de la oficina|réponse automatique|autosvar|vacation|on leave|afwezig",
    re.IGNORECASE,
)
_OOO_STRONG = re.compile(
    r"out of (?:the )?office|automatic reply|abwesenheitsnotiz|réponse automatique|autosvar|"
    r"fuera de la oficina",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status )?notification|delivery failure|returned mail|mail delivery|"
    r"failure notice|delivery has failed|non[- ]?delivery|could not be delivered|"
    r"message not delivered|unzustellbar|nicht zustellbar|rejected:|returned to sender|delivery problem|"
    r"warning: could not send|mail system error|undelivered|permanent error|delivery report|"
    r"メールエラー",
    re.IGNORECASE,
)
_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|post_master|post-master|mail-daemon|mailerdaemon|bounce[s]?)@",
    re.IGNORECASE,
)
# Amazon SES delivers bounce and complaint notifications as JSON in a plain mail from SNS.
# The JSON may arrive as is or escaped inside an SNS envelope's "Message" string (\"...\").
_SES_NOTICE = re.compile(rb'\\?"notificationType\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery)')


def _ses_notice(msg: Message) -> str | None:
    try:
        if msg.is_multipart():
            return None
        payload = msg.get_payload(decode=True)
    except Exception:
        return None
    # The pattern's optional leading backslash keeps re from scanning for its literal: `in` does.
    if not isinstance(payload, bytes) or b"notificationType" not in payload:
        return None
    found = _SES_NOTICE.search(payload)
    return found.group(1).decode() if found else None


def classify(msg: Message, sender: str | None, subject: str) -> Nature:
    """Loop and noise detection: a bounce, an out-of-office or another automatic message."""
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    return_path = header_text(msg, "Return-Path")
    has_dsn = any(
        p.get_content_type() in ("message/delivery-status", "message/feedback-report") for p in msg.walk()
    )
    ses = _ses_notice(msg)
    has_rfc822 = any(p.get_content_type() == "message/rfc822" for p in msg.walk())
    if (
        report_type in ("delivery-status", "feedback-report")
        or has_dsn
        or (sender is not None and _DAEMON.match(sender))
        or _BOUNCE_SUBJECT.search(subject)
        or ses in ("Bounce", "Complaint")
        # Hotmail's complaint loop (JMRP): a fixed subject plus the complained-about message attached.
        or (subject.lower().startswith("complaint about message from") and has_rfc822)
    ):
        return "bounce"
    auto_submitted = header_text(msg, "Auto-Submitted").lower()
    precedence = header_text(msg, "Precedence").lower()
    autoreply_headers = any(
        header_text(msg, h)
        for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Apple-Action")
    )
    automatic = (auto_submitted not in ("", "no")) or autoreply_headers or bool(precedence)
    # "Out of office" is unambiguous; "vacation" only counts when the message is marked automatic.
    # iCloud marks its vacation replies with X-Apple-Action: VACATION and nothing standard.
    vacation = header_text(msg, "X-Apple-Action").upper() == "VACATION"
    if vacation or _OOO_STRONG.search(subject) or (automatic and _OOO_SUBJECT.search(subject)):
        return "out_of_office"
    if (
        (auto_submitted and auto_submitted != "no")
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or autoreply_headers
        or return_path.replace(" ", "") == "<>"
        or ses == "Delivery"  # SES telling us a message arrived: machine mail, not a request
    ):
        return "auto_reply"
    return "request"


_QUOTED_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


def bounced_ids(msg: Message, full_text: str) -> tuple[str, ...]:
    """Message-IDs of the original message carried by a bounce (RFC 3464 parts or quoted headers)."""
    found: list[str] = []
    try:
        for part in msg.walk():
            kind = part.get_content_type()
            if kind in ("message/rfc822", "message/global"):
                for inner in part.get_payload() or []:
                    if isinstance(inner, Message):
                        found.extend(message_ids(raw_text(inner, "Message-ID")))
                # A blank line before the returned headers makes them the embedded message's body text.
                text = embedded_bytes(part).decode("utf-8", "replace")
                found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(text))
            elif kind in ("text/rfc822-headers", "message/global-headers"):
                payload = part.get_payload(decode=True)
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
                found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(text))
    except Exception:
        pass
    found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(full_text))
    return tuple(dict.fromkeys(found))
