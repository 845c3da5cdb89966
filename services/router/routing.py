"""Pure routing pieces: idempotency records, tickets, timers, timeline ids and threading rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from services.contracts import Decision, RequestAmended, Sender, ServiceRequest, Ticket, TimelineEntry
from services.contracts.events import TimelineKind
from services.contracts.requests import SenderAuth
from services.contracts.subjects import kv_key
from services.policy.matching import first_emergency
from services.wording import desk

SERVICE = "router"
TIMER_PREFIX = "router.release."
CURSOR_KEY = "cursor.round_robin"
# Mail to postmaster (RFC 5321 4.5.1) is for ops: kept on this timeline, never a ticket, never answered.
POSTMASTER_TIMELINE = "postmaster"
_OUR_MESSAGE_ID = re.compile(r"<?(SR-\d{1,9})\.[0-9a-z]{1,32}\.[0-9a-f]{16}@")

# noted: a "thanks" after DONE; reopened: other words within the reopen window (services/router/reopen.py)
Outcome = Literal["ticket", "threaded", "timeline", "noted", "reopened"]


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the router decided for one request id; written before anything is published."""

    outcome: Outcome
    client_id: str
    ticket_number: str | None = None
    decision: Decision | None = None


class ReleaseTimer(msgspec.Struct, frozen=True, kw_only=True):
    """A queued ticket waiting for the desk to open."""

    ticket_number: str
    due: datetime


def due_timers(pending: Mapping[str, ReleaseTimer], now: datetime) -> list[tuple[str, ReleaseTimer]]:
    """The timers whose instant has come, oldest first (ties by ticket number, for a stable order)."""
    ordered = sorted(pending.items(), key=lambda kt: (kt[1].due, kt[1].ticket_number))
    return [(key, timer) for key, timer in ordered if timer.due <= now]


def next_release(pending: Mapping[str, ReleaseTimer]) -> datetime | None:
    return min((timer.due for timer in pending.values()), default=None)


def lane_keys(message: ServiceRequest | RequestAmended) -> frozenset[str]:
    """What a message may depend on: two messages sharing a key are handled in arrival order.

    A follow-up names the message it answers (In-Reply-To/References), whose thread key the first
    one writes; an amendment needs its request's record; follow-ups to one ticket append to it in
    order. Unrelated requests share nothing and may be handled side by side.
    """
    if isinstance(message, RequestAmended):
        return frozenset({f"request:{message.request_id}"})
    thread = message.thread
    keys = {f"request:{message.id}"}
    keys.update(
        f"message:{thread_key(m)}" for m in (thread.message_id, *thread.in_reply_to, *thread.references) if m
    )
    ours = referenced_ticket(message)
    keys.update(f"ticket:{t.strip().upper()}" for t in (thread.ticket_token, ours) if t)
    return frozenset(keys)


def request_key(request_id: str) -> str:
    return f"request.{kv_key(request_id)}"


def timer_key(ticket_number: str) -> str:
    return f"{TIMER_PREFIX}{kv_key(ticket_number)}"


def thread_key(message_id: str) -> str:
    return kv_key(message_id.strip().strip("<>").lower())


def ticket_number(n: int) -> str:
    return f"SR-{n}"


def is_emergency(request: ServiceRequest, keywords: tuple[str, ...]) -> bool:
    """An intake's emergency hint, or an emergency keyword in the subject or what the client wrote."""
    if request.priority_hint == "emergency":
        return True
    text = f"{request.subject}\n{request.body or request.full_text}"
    return first_emergency(text, keywords) is not None


def summary(request: ServiceRequest, limit: int = 160) -> str:
    text = " ".join((request.body or request.full_text or request.subject).split())
    if not text:
        return f"{request.channel} request"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def open_ticket(number: str, request: ServiceRequest, decision: Decision) -> Ticket:
    return Ticket(
        number=number,
        request_id=request.id,
        client_id=decision.client_id,
        channel=request.channel,
        # An unauthenticated address is not a contact: nothing the notifier sends may reach it.
        contact=request.sender if request.sender_auth.trusted else Sender(),
        subject=request.subject or summary(request, 80),
        summary=summary(request),
        opened_at=request.received_at,
        decision=decision,
        status="queued",
        assignee=decision.assignee,
        response_due=decision.response_due,
        origin_message_id=request.thread.message_id,
        request_ids=(request.id,),
    )


def referenced_ticket(request: ServiceRequest) -> str | None:
    """The ticket inside one of our own Message-IDs the client replied to (intake verified the HMAC)."""
    if not request.thread.references_ours:
        return None
    for value in (*request.thread.in_reply_to, *reversed(request.thread.references)):
        match = _OUR_MESSAGE_ID.search(value)
        if match:
            return match.group(1)
    return None


def thread_candidates(request: ServiceRequest) -> list[str]:
    """Message-ids to look up in KV_THREADS, most specific first."""
    return [*request.thread.in_reply_to, *reversed(request.thread.references)]


def timeline_kind(request: ServiceRequest) -> TimelineKind:
    if request.nature == "bounce":
        return "bounce_recorded"
    if request.nature in ("auto_reply", "out_of_office"):
        return "auto_reply_recorded"
    return "threaded"


def entry(
    kind: TimelineKind,
    *,
    key: str,
    at: datetime,
    client_id: str,
    text: str,
    ticket: str | None = None,
    request_id: str | None = None,
) -> TimelineEntry:
    # Deterministic ids: a redelivered request republishes the same entries, which JetStream drops.
    return TimelineEntry(
        id=f"router:{kind}:{key}",
        at=at,
        client_id=client_id,
        kind=kind,
        text=text,
        service=SERVICE,
        ticket_number=ticket,
        request_id=request_id,
        actor="system",
    )


def request_entry(
    kind: TimelineKind,
    message: ServiceRequest | RequestAmended,
    record: RequestRecord,
    *,
    key: str,
    text: str,
) -> TimelineEntry:
    """What the router did with `message`, on the timeline of the client (and ticket) its record names."""
    request_id = message.request_id if isinstance(message, RequestAmended) else message.id
    return entry(
        kind,
        key=key,
        at=message.received_at,
        client_id=record.client_id,
        text=text,
        ticket=record.ticket_number,
        request_id=request_id,
    )


def routed_text(decision: Decision) -> str:
    due = decision.response_due.isoformat()
    who = decision.assignee or "nobody"
    if decision.disposition == "queue":
        return (
            f"Queued until {decision.notify_at.isoformat()} for {who} "
            f"({decision.tier}, {decision.priority}); response due {due}."
        )
    how = "Paged on-call" if decision.disposition == "page_oncall" else "Dispatched to"
    return f"{how} {who} ({decision.tier}, {decision.priority}); response due {due}."


def is_postmaster(request: ServiceRequest) -> bool:
    return request.channel == "email" and request.recipient.strip().lower().split("@")[0] == "postmaster"


def received_text(request: ServiceRequest) -> str:
    """What the timeline says of an arrival: who, and for anything but a request why no ticket opened."""
    sender = request.sender.email or request.sender.phone or "unknown"
    if request.sender_auth.trusted:
        return desk.received_text(request.channel, sender, summary(request), request.nature)
    why = request.sender_auth.reason or "no reason given"
    return f"{request.channel} claiming to be {sender} (sender not authenticated: {why}): {summary(request)}"


def unauthenticated(decision: Decision, auth: SenderAuth) -> Decision:
    """The decision for a sender we could not authenticate (decided as an unknown, non-emergency one)."""
    why = (
        f"Sender not authenticated ({auth.reason or auth.method}): the claimed address is ignored, "
        "no emergency paging, no acknowledgment."
    )
    return msgspec.structs.replace(decision, reasons=(why, *decision.reasons))


def unacknowledged(request: ServiceRequest, record: RequestRecord) -> TimelineEntry:
    return request_entry(
        "note",
        request,
        record,
        key=f"unacknowledged.{record.ticket_number}",
        text=f"No acknowledgment sent: sender not authenticated ({request.sender_auth.reason}).",
    )
