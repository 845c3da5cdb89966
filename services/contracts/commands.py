"""Commands: imperatives one service asks another to carry out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from services.contracts.tickets import Ticket


class AcknowledgeClient(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Tell the client, right after routing, what happens next and by when."""

    id: str
    ticket: Ticket
    request_id: str
    # Set by intake when the message must never be answered automatically.
    suppress: bool = False


class DispatchTicket(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Notify the ticket's assignee now (at notify_at), and start the acceptance clock."""

    id: str
    ticket: Ticket
    released_from_queue: bool = False


class RelayClientMessage(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A threaded follow-up from the client: pass it on to whoever has the ticket."""

    id: str
    ticket: Ticket
    request_id: str
    summary: str


Command = AcknowledgeClient | DispatchTicket | RelayClientMessage

Purpose = Literal[
    "tech_dispatch",
    "tech_escalation",
    "tech_help",
    "tech_relay",
    "client_ack",
    "client_update",
    "client_delay",
    "client_resolved",
    "ops_alert",
]


class SendSms(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    key: str  # idempotency key: one key, at most one SMS, ever
    to: str
    body: str
    purpose: Purpose
    created_at: datetime
    client_id: str | None = None
    ticket_number: str | None = None
    fallback_email: str | None = None  # where to go when the number is permanently unreachable


class SendEmail(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    key: str
    to: str
    subject: str
    body: str
    purpose: Purpose
    created_at: datetime
    client_id: str | None = None
    ticket_number: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


# Desk actions from the console (fd.notify.desk.<action>): the notifier, which owns a ticket after
# dispatch, carries them out and records them on the timeline under the user's name. `id` is one per
# submitted form and is the Nats-Msg-Id, so a double click or a redelivery acts once.
class ReassignTicket(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Give the ticket to another tech, who gets the dispatch SMS and must accept it."""

    id: str
    ticket_number: str
    tech: str
    user: str
    requested_at: datetime


class ResolveTicket(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Close the ticket on the desk's word and tell the client."""

    id: str
    ticket_number: str
    user: str
    requested_at: datetime


class SendClientUpdate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Send the client a written update in their channel."""

    id: str
    ticket_number: str
    user: str
    text: str
    requested_at: datetime


DeskCommand = ReassignTicket | ResolveTicket | SendClientUpdate
