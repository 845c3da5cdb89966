"""The delivery state machine of one outbound message, as pure transitions over its KV record.

Each transition takes the record as stored (None: none yet) and returns (the record to store, or None
to leave it, and what the sender should do). The sender applies them by compare-and-set, so the
transition that stood is the one whose answer it acts on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from services.contracts import SendEmail, SendSms, SmsStatusReported
from services.contracts import subjects as s

State = Literal["sending", "sent", "delivered", "failed", "retry", "suppressed"]
Channel = Literal["sms", "email"]
Outbound = SendSms | SendEmail


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    state: State
    at: datetime
    channel: Channel
    sid: str | None = None
    error: str = ""
    attempts: int = 0
    # Wall-clock seconds when a sender took the message: "is that request still in flight" is a
    # question about real time, not about the injected business clock.
    claimed: float = 0.0
    claim: str = ""  # which sender holds it: a sender that finds another's claim here stops
    unsure: bool = False  # "retry" after an attempt whose outcome we never heard
    error_code: int = 0
    # The command itself, so a late carrier failure (status callback) can still fall back.
    message: SendSms | SendEmail | None = None


decode_record = msgspec.json.Decoder(DeliveryRecord)

# What a claim found: send a new message, send again, ask Twilio first, wait for a live sender,
# nothing (done already), or run a failed message's fallback again.
ClaimOutcome = Literal["new", "again", "reconcile", "busy", "done", "refail"]


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    outcome: ClaimOutcome
    first_at: datetime  # when the first attempt at this message began
    previous: DeliveryRecord | None = None


def outbound_key(key: str) -> str:
    return s.kv_key(f"out.{key}")


def channel_of(message: Outbound) -> Channel:
    return "sms" if isinstance(message, SendSms) else "email"


def claim(
    current: DeliveryRecord | None,
    message: Outbound,
    *,
    now: datetime,
    wall: float,
    mine: str,
    reconcile_after: float,
) -> tuple[DeliveryRecord | None, Claimed]:
    """Take the message for this sender, unless it is done or another live sender holds it."""
    first_at = now
    outcome: ClaimOutcome = "new"
    if current is not None:
        if current.state == "sending":
            # Left behind by a sender that crashed, or held by one still working: Twilio may or may
            # not have the message. A live sender refreshes its claim before every request, so only
            # a claim older than any request can be taken over; then Twilio is asked, not guessed.
            if wall - current.claimed < reconcile_after:
                return None, Claimed(outcome="busy", first_at=now, previous=current)
            outcome, first_at = "reconcile", current.at
        elif current.state == "retry":
            outcome = "reconcile" if current.unsure else "again"
            first_at = current.at
        elif current.state == "failed" and current.message is not None:
            # The fallback may not have gone out before a crash.
            return None, Claimed(outcome="refail", first_at=now, previous=current)
        else:
            return None, Claimed(outcome="done", first_at=now, previous=current)  # never again
    record = holding(message, first_at=first_at, wall=wall, mine=mine)
    return record, Claimed(outcome=outcome, first_at=first_at, previous=current)


def holding(message: Outbound, *, first_at: datetime, wall: float, mine: str) -> DeliveryRecord:
    """The record of a message this sender holds: tried since first_at, claimed (or renewed) at wall."""
    return DeliveryRecord(
        state="sending", at=first_at, channel=channel_of(message), claimed=wall, claim=mine, message=message
    )


def renew(current: DeliveryRecord | None, mine: str, wall: float) -> tuple[DeliveryRecord | None, bool]:
    """Refresh our claim before a request; the answer is False when another sender holds it now."""
    if current is None or current.state != "sending" or current.claim != mine:
        return None, False
    return msgspec.structs.replace(current, claimed=wall), True


def release(
    current: DeliveryRecord | None,
    message: Outbound,
    *,
    mine: str,
    first_at: datetime,
    error: str,
    unsure: bool,
    wall: float,
) -> tuple[DeliveryRecord | None, None]:
    """Hand the message back as "retry", unless another sender holds it now."""
    if current is not None and (current.state != "sending" or current.claim != mine):
        return None, None
    # Our claim's record (written again should it have gone meanwhile: "unsure" must not be lost),
    # now waiting for a retry, with why, and no longer held by anyone.
    ours = current or holding(message, first_at=first_at, wall=wall, mine=mine)
    return msgspec.structs.replace(
        ours, state="retry", error=error, claimed=wall, unsure=unsure, claim=""
    ), None


def settle(
    current: DeliveryRecord | None, channel: Channel, sid: str, *, attempts: int, now: datetime
) -> tuple[DeliveryRecord | None, None]:
    """Record the send, unless a status callback already said delivered or failed."""
    if current is not None and current.state not in ("sending", "retry"):
        return None, None
    record = DeliveryRecord(
        state="sent",
        at=now,
        channel=channel,
        sid=sid,
        attempts=attempts,
        message=current.message if current else None,
    )
    return record, None


def report(
    current: DeliveryRecord | None, event: SmsStatusReported
) -> tuple[DeliveryRecord | None, DeliveryRecord | None]:
    """Twilio's final word on an SMS; the answer is the failed record whose fallback must run, if any."""
    if current is None:
        return None, None
    if current.sid is not None and current.sid != event.message_sid:
        return None, None  # a report about some other message
    if event.status == "delivered":
        if current.state not in ("sending", "sent", "retry"):
            return None, None
        return msgspec.structs.replace(current, state="delivered", sid=event.message_sid), None
    if current.state == "failed":
        # Reported again (a redelivery after a crash mid-fallback): run the fallback again; everything
        # it publishes is de-duplicated, so it lands once.
        return None, current
    # "retry" included: a 5xx after Twilio created the message leaves "retry", and the carrier's
    # verdict usually comes before the next delivery.
    code = event.error_code or 0
    failed = msgspec.structs.replace(
        current, state="failed", sid=event.message_sid, error=f"{code} {event.status}", error_code=code
    )
    return failed, current
