"""Coverage: what the client's plan covers now, and by when we will respond (services/wording words it)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.contracts.tickets import Disposition
from services.policy.decide import decide, span_text, tier_of
from services.policy.model import Client, Policy


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    in_hours: bool
    disposition: Disposition
    hours_text: str
    respond_by: datetime
    billable_fee: str | None = None
    billable_respond_within_text: str | None = None


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
    fee = None
    within = None
    # The billable offer only makes sense when the call would otherwise wait in the queue.
    if decision.disposition == "queue" and emergency and tier.billable_after_hours is not None:
        fee = tier.billable_after_hours.fee
        within = span_text(tier.billable_after_hours.respond_within)
    return Coverage(
        in_hours=decision.in_hours,
        disposition=decision.disposition,
        hours_text=hours_text,
        respond_by=decision.response_due,
        billable_fee=fee,
        billable_respond_within_text=within,
    )
