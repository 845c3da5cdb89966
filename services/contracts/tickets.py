"""The routing decision and the ticket it opens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from services.contracts.requests import Channel, Priority, Sender

Disposition = Literal["dispatch", "page_oncall", "queue"]
TicketStatus = Literal["queued", "dispatched", "accepted", "resolved"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The one documented answer the policy gives for a request."""

    client_id: str
    client_name: str
    tier: str
    priority: Priority
    in_hours: bool
    disposition: Disposition
    notify_at: datetime
    response_due: datetime
    assignee: str | None
    oncall: str | None
    billable: bool = False
    reasons: tuple[str, ...] = ()


class Ticket(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    number: str  # "SR-1001"
    request_id: str
    client_id: str
    channel: Channel
    contact: Sender
    subject: str
    summary: str
    opened_at: datetime
    decision: Decision
    status: TicketStatus = "queued"
    assignee: str | None = None  # current assignee (escalation moves it)
    escalation_step: int = 0
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    eta: datetime | None = None
    response_due: datetime | None = None  # current commitment (a DELAY moves it)
    origin_message_id: str | None = None  # client's Message-ID, for threading our replies
    request_ids: tuple[str, ...] = ()
