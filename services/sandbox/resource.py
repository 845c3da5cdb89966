"""Twilio-shaped resources and errors: SIDs, message/call JSON, the error catalogue (pure, no I/O)."""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"

# The subset of Twilio REST errors the sandbox can inject, with Twilio's wording.
ERRORS: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    21211: "The 'To' number {to} is not a valid phone number.",
    21604: "A 'To' phone number is required.",
    21602: "Message body is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    30003: "Unreachable destination handset",
}
# 30003 is a carrier delivery failure: Twilio accepts the send, then reports "undelivered".
DELIVERY_ERRORS = frozenset({30003})
SEND_ERRORS = frozenset({21211, 21610, 21614})


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def rfc2822(instant: datetime) -> str:
    return format_datetime(instant)


def error(code: int, status: int, **fields: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": ERRORS.get(code, "Error").format(**fields),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def segments(body: str) -> int:
    # GSM-7 fits 160 per single SMS, 153 per part when concatenated; UCS-2 70/67.
    gsm = all(ord(ch) < 128 for ch in body)
    single, part = (160, 153) if gsm else (70, 67)
    if len(body) <= single:
        return 1
    return -(-len(body) // part)


def _resource(
    account_sid: str,
    collection: str,
    resource_sid: str,
    created: datetime,
    *,
    to: str,
    from_: str,
    status: str,
) -> dict[str, Any]:
    """The keys Twilio's Message and Call resources share: account, sid and uri, the two numbers,
    status and dates, and a price that stays unknown until Twilio settles it."""
    stamp = rfc2822(created)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "date_created": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "from": from_,
        "price": None,
        "price_unit": "USD",
        "sid": resource_sid,
        "status": status,
        "to": to,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/{collection}/{resource_sid}.json",
    }


def message(
    *,
    account_sid: str,
    message_sid: str,
    to: str,
    from_: str,
    body: str,
    status: str,
    created: datetime,
    messaging_service_sid: str | None,
    error_code: int | None = None,
) -> dict[str, Any]:
    shared = _resource(account_sid, "Messages", message_sid, created, to=to, from_=from_, status=status)
    return {
        **shared,
        "body": body,
        "date_sent": shared["date_created"],
        "error_code": error_code,
        "error_message": ERRORS.get(error_code) if error_code else None,
        "messaging_service_sid": messaging_service_sid,
        "num_media": "0",
        "num_segments": str(segments(body)),
        "subresource_uris": {"media": shared["uri"].removesuffix(".json") + "/Media.json"},
    }


def call(
    *,
    account_sid: str,
    call_sid: str,
    to: str,
    from_: str,
    created: datetime,
) -> dict[str, Any]:
    return {
        **_resource(account_sid, "Calls", call_sid, created, to=to, from_=from_, status="queued"),
        "annotation": None,
        "answered_by": None,
        "caller_name": None,
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from_formatted": from_,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "start_time": None,
        "to_formatted": to,
    }


def page(records: list[dict[str, Any]], path: str, size: int) -> dict[str, Any]:
    """Twilio's one-page list envelope over `records` (oldest first): newest first, at most `size`."""
    chosen = list(reversed(records))[:size]  # Twilio lists newest first
    uri = f"{path}?PageSize={size}&Page=0"
    return {
        "messages": chosen,
        "end": max(len(chosen) - 1, 0),
        "first_page_uri": uri,
        "next_page_uri": None,
        "page": 0,
        "page_size": size,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }
