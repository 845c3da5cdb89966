"""Coverage: what the client's plan covers now, and by when we will respond (services/wording words it)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.contracts.tickets import Disposition
from services.policy.decide import decide, tier_of
from services.policy.model import Billable, Client, Policy


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    in_hours: bool
    disposition: Disposition
    hours_text: str
    respond_by: datetime
    offer: Billable | None = None


def describe(policy: Policy, client: Client | None, at: datetime, *, emergency: bool) -> Coverage:
    contact = client.contacts[0] if client is not None and client.contacts else None
    decision, _ = decide(
        policy,
        email=contact.email if contact else None,
        phone=contact.phone if contact and not contact.email else None,
        at=at,
        emergency=emergency,
    )
    tier = tier_of(policy, client)
    hours_text = tier.description or f"{policy.desk.hours} hours"
    offer = None
    # The billable offer only makes sense when the call would otherwise wait in the queue, and only
    # with a fee to name: every reader (menu, press 9, acknowledgment) takes "no fee" as "no offer".
    billable = tier.billable_after_hours
    if decision.disposition == "queue" and emergency and billable is not None and billable.fee:
        offer = billable
    return Coverage(
        in_hours=decision.in_hours,
        disposition=decision.disposition,
        hours_text=hours_text,
        respond_by=decision.response_due,
        offer=offer,
    )
