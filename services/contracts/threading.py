"""Wire format of ticket tokens and our Message-IDs, signed with HMAC so they cannot be forged.

A subject token looks like ``[SR-1042-3f9a1c2b]``; the suffix is the first 8 hex digits of
HMAC-SHA256(secret, "SR-1042"). A bare ``[SR-1042]`` is still recognised but reported unsigned,
so the router only honours it when the sender belongs to the ticket's client.
Our outbound Message-IDs look like ``<SR-1042.<nonce>.<sig>@domain>``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import msgspec

_SUBJECT_TOKEN = re.compile(r"\[\s*(SR-\d{1,9})(?:-([0-9a-fA-F]{8}))?\s*\]")
_MESSAGE_ID = re.compile(r"<?(SR-\d{1,9})\.([0-9a-z]{1,32})\.([0-9a-f]{16})@[^>\s]+>?")
TICKET_NUMBER = re.compile(r"\b(?:SR)?-?(\d{3,9})\b", re.IGNORECASE)


class SubjectToken(msgspec.Struct, frozen=True):
    ticket_number: str
    signed: bool  # a valid signature we issued
    forged: bool  # a signature was present but did not verify


def _mac(secret: bytes, text: str, length: int) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:length]


def subject_token(ticket_number: str, secret: bytes) -> str:
    return f"[{ticket_number}-{_mac(secret, ticket_number, 8)}]"


def find_subject_token(subject: str, secret: bytes) -> SubjectToken | None:
    """The first ticket token in a subject; forged signatures are reported, never trusted."""
    match = _SUBJECT_TOKEN.search(subject)
    if match is None:
        return None
    number, sig = match.group(1), match.group(2)
    if sig is None:
        return SubjectToken(number, signed=False, forged=False)
    ok = hmac.compare_digest(sig.lower(), _mac(secret, number, 8))
    return SubjectToken(number, signed=ok, forged=not ok)


def message_id(ticket_number: str, nonce: str, domain: str, secret: bytes) -> str:
    sig = _mac(secret, f"{ticket_number}.{nonce}", 16)
    return f"<{ticket_number}.{nonce}.{sig}@{domain}>"


def verify_message_id(value: str, secret: bytes) -> str | None:
    """The ticket number inside one of our signed Message-IDs, or None when not ours or forged."""
    match = _MESSAGE_ID.search(value)
    if match is None:
        return None
    number, nonce, sig = match.groups()
    if hmac.compare_digest(sig, _mac(secret, f"{number}.{nonce}", 16)):
        return number
    return None
