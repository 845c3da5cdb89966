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
    """A threaded follow-up from the client (or a voicemail's transcript): pass it on to whoever has
    the ticket, or keep it for the dispatch when nobody has been texted yet."""

    id: str
    ticket: Ticket
    request_id: str
    summary: str
    voicemail: str = ""  # a transcript that arrived after the call's request
    recording_url: str = ""
    reopen: bool = False  # the ticket was resolved: the client's words reopen it (within the window)


Command = AcknowledgeClient | DispatchTicket | RelayClientMessage

Purpose = Literal[
    "tech_dispatch",
    "tech_escalation",
    "tech_help",
    "tech_relay",
    "tech_confirm",
    "client_ack",
    "client_update",
    "client_delay",
    "client_resolved",
    "ops_alert",
]


class Outbound(msgspec.Struct, frozen=True, kw_only=True):
    """What every message we send carries: its idempotency key, recipient, words and why it is sent."""

    key: str  # idempotency key: one key, at most one message, ever
    to: str
    body: str
    purpose: Purpose
    created_at: datetime
    client_id: str | None = None
    ticket_number: str | None = None


class SendSms(Outbound, frozen=True, kw_only=True, tag=True):
    fallback_email: str | None = None  # where to go when the number is permanently unreachable


class SendEmail(Outbound, frozen=True, kw_only=True, tag=True):
    subject: str
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
