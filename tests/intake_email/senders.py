"""How test mail proves its sender: the Authentication-Results header a trusted relay would add."""

from __future__ import annotations

from email.message import EmailMessage

AUTHSERV_ID = "frontdesk.test"  # the dev and test setting of FRONTDESK_SMTP_AUTHSERV_ID


def passed(address: str, authserv_id: str = AUTHSERV_ID) -> str:
    """The header value saying our relay found an aligned DMARC pass for `address`'s domain."""
    domain = address.strip().strip("<>").rsplit("@", 1)[-1].lower()
    return f"{authserv_id}; dmarc=pass header.from={domain}"


def client_email(tag: str, i: int) -> EmailMessage:
    """Request number `i` of a stream from Acme's Dana, authenticated; `tag-NNNN` marks it in the subject."""
    msg = EmailMessage()
    msg["Authentication-Results"] = passed("dana@acme.example")
    msg["From"] = "Dana Client <dana@acme.example>"
    msg["To"] = "support@frontdesk.test"
    msg["Subject"] = f"{tag}-{i:04d} printer jammed"
    msg["Message-ID"] = f"<{tag}-{i}@acme.example>"
    msg.set_content(f"Request {tag}-{i:04d}.\n")
    return msg
