"""The notifier tests' one sample ticket: Jane's, at Acme Manufacturing, for Alice (the example policy's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from services.contracts import Decision, Sender, Ticket

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday: 10:00 in New York, 09:00 in Chicago (in hours)
JANE = "+13125550150"


def ticket(number: str = "SR-1042", **changes: Any) -> Ticket:
    """As the notifier holds it once dispatched: Alice's, due in four hours. `priority` is the decision's."""
    decision = Decision(
        client_id="acme",
        client_name="Acme Manufacturing",
        tier="premium",
        priority="normal",
        in_hours=True,
        disposition="dispatch",
        notify_at=NOW,
        response_due=NOW + timedelta(hours=4),
        assignee="alice",
        oncall=None,
    )
    base = Ticket(
        number=number,
        request_id="req-1",
        client_id="acme",
        channel="email",
        contact=Sender(email="jane@acme.example", phone=JANE, name="Jane Roe"),
        subject="MES server slow",
        summary="MES server slow on line 2",
        opened_at=NOW,
        decision=decision,
        status="dispatched",
        assignee="alice",
        response_due=decision.response_due,
    )
    if "priority" in changes:
        decision = msgspec.structs.replace(decision, priority=changes.pop("priority"))
        base = msgspec.structs.replace(base, decision=decision)
    return msgspec.structs.replace(base, **changes)
