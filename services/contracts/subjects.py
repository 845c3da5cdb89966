"""Subject, stream, bucket and object-store names: the one place the NATS topology is named."""

from __future__ import annotations

import re

PREFIX = "fd"

# Streams and the subjects they capture.
STREAM_REQUESTS = "FD_REQUESTS"
REQUESTS_ALL = f"{PREFIX}.requests.>"
REQUEST_AMENDED = f"{PREFIX}.requests.amended"

STREAM_REPLIES = "FD_REPLIES"
REPLIES_ALL = f"{PREFIX}.replies.>"
TECH_REPLIED = f"{PREFIX}.replies.tech"
OPT_OUT_CHANGED = f"{PREFIX}.replies.optout"
SMS_STATUS_REPORTED = f"{PREFIX}.replies.status"

STREAM_NOTIFY = "FD_NOTIFY"
NOTIFY_ALL = f"{PREFIX}.notify.>"
DESK_ALL = f"{PREFIX}.notify.desk.>"  # the console's actions, inside FD_NOTIFY
DELIVERY_FAILED = f"{PREFIX}.notify.delivery_failed"  # the notifier's sender tells its workflow

STREAM_OUTBOX = "FD_OUTBOX"
OUTBOX_ALL = f"{PREFIX}.outbox.>"
OUTBOX_SMS = f"{PREFIX}.outbox.sms"
OUTBOX_EMAIL = f"{PREFIX}.outbox.email"

STREAM_TIMELINE = "FD_TIMELINE"
TIMELINE_ALL = f"{PREFIX}.timeline.>"

STREAM_DLQ = "FD_DLQ"
DLQ_ALL = f"{PREFIX}.dlq.>"

# The notifier's durable consumers, one per kind of message, and the stream each reads: (stream, durable
# name). The notifier's consumers take their streams from this list; its grants and the tests that wait for
# it to settle read it too.
DURABLE_NOTIFIER = "notifier"  # fd.notify commands
DURABLE_NOTIFIER_REPLIES = "notifier-replies"  # tech replies
DURABLE_NOTIFIER_OPTOUT = "notifier-optout"  # opt-out changes
DURABLE_NOTIFIER_STATUS = "notifier-status"  # Twilio's status callbacks
DURABLE_NOTIFIER_SENDER = "notifier-sender"  # fd.outbox
NOTIFIER_DURABLES = (
    (STREAM_NOTIFY, DURABLE_NOTIFIER),
    (STREAM_REPLIES, DURABLE_NOTIFIER_REPLIES),
    (STREAM_REPLIES, DURABLE_NOTIFIER_OPTOUT),
    (STREAM_REPLIES, DURABLE_NOTIFIER_STATUS),
    (STREAM_OUTBOX, DURABLE_NOTIFIER_SENDER),
)

# Key-value buckets.
KV_TICKETS = "fd_tickets"  # ticket number -> Ticket (CAS-updated by router and notifier)
KV_SEQUENCES = "fd_sequences"  # named counters (ticket numbers), CAS-incremented
KV_ROUTER = "fd_router"  # round-robin positions, request-id -> ticket idempotency records
KV_THREADS = "fd_threads"  # message-id / call-sid hash -> ticket number
KV_TIMERS = "fd_timers"  # durable timers, key "<owner>.<timer id>"
KV_OUTBOUND = "fd_outbound"  # idempotency key -> delivery record of an outbound SMS/email
KV_CONTACTS = "fd_contacts"  # per-phone/email state kept for good: opt-outs, a client's last touch
KV_WINDOWS = "fd_windows"  # short-lived counters (rate windows, help replies, update throttles): expire
KV_SEEN = "fd_seen"  # ids of events already handled (tech replies), kept for a week then expired

# Object store for raw emails, attachments and other large payloads.
OBJ_RAW = "fd_raw"

_TOKEN_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_token(value: str) -> str:
    """Make a value safe as one subject token (no dots, spaces or wildcards)."""
    cleaned = _TOKEN_SAFE.sub("_", value)
    return cleaned or "_"


def request_subject(channel: str) -> str:
    return f"{PREFIX}.requests.{subject_token(channel)}"


def notify_subject(command: str) -> str:
    return f"{PREFIX}.notify.{subject_token(command)}"


def desk_subject(action: str) -> str:
    """fd.notify.desk.<action>: reassign, resolve, update."""
    return f"{PREFIX}.notify.desk.{subject_token(action)}"


def timeline_subject(client_id: str) -> str:
    return f"{PREFIX}.timeline.{subject_token(client_id)}"


def dlq_subject(stream: str) -> str:
    return f"{PREFIX}.dlq.{subject_token(stream)}"


def kv_key(value: str) -> str:
    """KV keys allow [-/_=.a-zA-Z0-9]; map anything else (e.g. '@', '+', '<') to a safe form."""
    return re.sub(r"[^-/_=.a-zA-Z0-9]", lambda m: f"={ord(m.group()):x}=", value).strip(".") or "_"
