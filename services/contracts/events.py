"""Events: past-tense facts published by intakes and services."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from services.contracts.commands import SendSms

ReplyVerb = Literal["accept", "eta", "delay", "done", "unknown"]


class RequestAmended(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """More content for a request already published (a voicemail recording, its transcription)."""

    id: str  # de-duplication id of this amendment (e.g. RecordingSid + kind)
    request_id: str
    received_at: datetime
    recording_url: str | None = None
    recording_seconds: int | None = None
    transcription: str | None = None


class TechReplied(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str  # MessageSid
    phone: str  # E.164 of the tech
    received_at: datetime
    verb: ReplyVerb
    ticket_number: str | None = None
    minutes: int | None = None
    reason: str = ""
    text: str = ""


class SmsStatusReported(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Twilio's final word on an SMS we sent (status callback): delivered, undelivered or failed."""

    id: str  # "<MessageSid>.<status>": one event per final status
    message_sid: str
    status: Literal["delivered", "undelivered", "failed"]
    to: str
    reported_at: datetime
    key: str = ""  # our idempotency key, carried in the callback URL we gave Twilio
    error_code: int | None = None


class DeliveryFailed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An SMS to a tech could not be delivered (refused by Twilio, or failed later at the carrier): the
    notifier treats the tech as unreachable and escalates at once instead of waiting for the ack timer."""

    id: str  # "failed.<key>": one event per failed message, whoever notices first
    message: SendSms  # the SMS that failed, as the sender had it: its key, recipient, ticket and client
    error_code: int
    at: datetime


class OptOutChanged(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str  # MessageSid
    phone: str
    opted_out: bool
    received_at: datetime
    keyword: str = ""


TimelineKind = Literal[
    "request_received",
    "request_amended",
    "ack_sent",
    "routed",
    "queued",
    "released",
    "threaded",
    "tech_notified",
    "tech_accepted",
    "eta_given",
    "delay_update_sent",
    "escalated",
    "breached",
    "resolved",
    "reopened",
    "message_failed",
    "bounce_recorded",
    "auto_reply_recorded",
    "opt_out_changed",
    "note",
]


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One touch on a client's timeline; the stream subject is per client."""

    id: str  # de-duplication id
    at: datetime
    client_id: str
    kind: TimelineKind
    text: str
    service: str
    ticket_number: str | None = None
    request_id: str | None = None
    actor: str | None = None  # tech id, contact, "system"
