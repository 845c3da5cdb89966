"""A ticket factory shared by the notifier's pure-module tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from services.contracts import Decision, Sender, Ticket

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def ticket(number: str = "SR-1042", **changes: Any) -> Ticket:
    decision = Decision(
        client_id="acme",
        client_name="Acme Dental",
        tier="premium",
        priority="normal",
        in_hours=True,
        disposition="dispatch",
        notify_at=NOW,
        response_due=NOW + timedelta(hours=2),
        assignee="tech-ann",
        oncall=None,
    )
    base = Ticket(
        number=number,
        request_id="req-1",
        client_id="acme",
        channel="email",
        contact=Sender(email="dana@acme.example", phone="+15551230000", name="Dana Smith"),
        subject="Printer offline",
        summary="Front desk printer offline since 9am",
        opened_at=NOW,
        decision=decision,
        status="dispatched",
        assignee="tech-ann",
        response_due=NOW + timedelta(hours=2),
    )
    if "priority" in changes:
        decision = msgspec.structs.replace(decision, priority=changes.pop("priority"))
        base = msgspec.structs.replace(base, decision=decision)
    return msgspec.structs.replace(base, **changes)
