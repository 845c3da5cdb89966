"""Coverage wording: what the client's plan covers now, and by when we will respond."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from services.contracts.tickets import Disposition
from services.policy.decide import decide, span_text, tier_of
from services.policy.model import Client, Policy


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    in_hours: bool
    disposition: Disposition
    hours_text: str
    respond_by: datetime
    respond_by_text: str
    billable_fee: str | None = None
    billable_respond_within_text: str | None = None
    sentence: str = ""


def when_text(instant: datetime, zone: ZoneInfo, *, now: datetime) -> str:
    """'Monday 9:00 AM' within a week of now, else 'Monday, March 16 9:00 AM'."""
    local = instant.astimezone(zone)
    clock = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    if (instant - now).days < 6:
        return f"{local:%A} {clock}"
    return f"{local:%A, %B} {local.day} {clock}"


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
    zone = ZoneInfo(client.timezone if client is not None and client.timezone else policy.desk.timezone)
    hours_text = tier.description or f"{policy.desk.hours} hours"
    respond_by_text = when_text(decision.response_due, zone, now=at)
    fee = None
    within = None
    # The billable offer only makes sense when the call would otherwise wait in the queue.
    if decision.disposition == "queue" and emergency and tier.billable_after_hours is not None:
        fee = tier.billable_after_hours.fee
        within = span_text(tier.billable_after_hours.respond_within)
    if decision.disposition == "dispatch":
        tail = f"A technician will respond by {respond_by_text}."
    elif decision.disposition == "page_oncall":
        tail = f"We are paging our on-call technician now and will respond by {respond_by_text}."
    else:
        tail = f"Leave a message and we will respond by {respond_by_text}."
    sentence = f"Your plan covers {hours_text}. {tail}"
    if fee is not None:
        sentence += f" For urgent after-hours help we can respond within {within} for a fee of {fee}."
    return Coverage(
        in_hours=decision.in_hours,
        disposition=decision.disposition,
        hours_text=hours_text,
        respond_by=decision.response_due,
        respond_by_text=respond_by_text,
        billable_fee=fee,
        billable_respond_within_text=within,
        sentence=sentence,
    )
