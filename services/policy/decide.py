"""The routing decision: who the sender is, what their tier promises now, and who gets the ticket."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.contracts import Decision
from services.contracts.requests import Priority
from services.contracts.tickets import Disposition
from services.policy.calendar import BusinessCalendar, local_instant, parse_clock
from services.policy.matching import matching_contact
from services.policy.model import WEEKDAYS, Client, Contact, Policy, Target, Tier

UNKNOWN_CLIENT_ID = "unknown"
UNKNOWN_CLIENT_NAME = "Unknown sender"


def known_contact(
    policy: Policy, *, email: str | None = None, phone: str | None = None
) -> tuple[Client, Contact] | None:
    """The client and contact an exact contact email or phone belongs to."""
    for client in policy.clients:
        if (contact := matching_contact(client.contacts, email=email, phone=phone)) is not None:
            return client, contact
    return None


def identify(policy: Policy, *, email: str | None = None, phone: str | None = None) -> Client | None:
    """An exact contact email or phone wins over an email-domain match."""
    if (exact := known_contact(policy, email=email, phone=phone)) is not None:
        return exact[0]
    address = (email or "").strip().lower()
    if "@" in address:
        domain = address.rsplit("@", 1)[1]
        for client in policy.clients:
            for known in (d.lower() for d in client.domains):
                if domain == known or domain.endswith("." + known):
                    return client
    return None


def desk_calendar(policy: Policy) -> BusinessCalendar:
    return BusinessCalendar(policy.calendars[policy.desk.hours])


def oncall_at(policy: Policy, t: datetime) -> str:
    """An override covering t wins; else rotation[k mod n], k = weekly handoffs after `start` up to t."""
    oncall = policy.oncall
    zone = ZoneInfo(oncall.timezone)
    t = t.astimezone(UTC)
    for override in oncall.overrides:
        begins = _instant(override.from_, zone)
        ends = _instant(override.to, zone)
        if begins <= t < ends:
            return override.tech
    hour, minute = parse_clock(oncall.handoff.time)
    weekday = WEEKDAYS.index(oncall.handoff.weekday)
    # rotation[0] holds the pager from `start` until the first handoff on a later day.
    first = oncall.start + timedelta(days=(weekday - oncall.start.weekday() - 1) % 7 + 1)
    local_day = t.astimezone(zone).date()
    last: date = local_day - timedelta(days=(local_day.weekday() - weekday) % 7)
    if local_instant(last, hour, minute, zone) > t:
        last -= timedelta(days=7)
    k = (last - first).days // 7 + 1 if last >= first else 0
    return oncall.rotation[k % len(oncall.rotation)]


def _instant(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        return local_instant(value.date(), value.hour, value.minute, zone)
    return value.astimezone(UTC)


def tier_of(policy: Policy, client: Client | None) -> Tier:
    return policy.tiers[client.tier if client is not None else policy.unknown_sender_tier]


def decide(
    policy: Policy,
    *,
    email: str | None,
    phone: str | None,
    at: datetime,
    emergency: bool,
    billable: bool = False,
    rotation_cursor: int = 0,
) -> tuple[Decision, int]:
    """The documented decision for one request; the int is the next round-robin cursor."""
    t = at.astimezone(UTC)
    reasons: list[str] = []
    client = identify(policy, email=email, phone=phone)
    tier_name = client.tier if client is not None else policy.unknown_sender_tier
    tier = policy.tiers[tier_name]
    if client is None:
        reasons.append(f"Sender is not a known contact or domain, so the {tier_name} tier applies.")
    else:
        how = "contact" if _is_contact(client, email, phone) else "email domain"
        reasons.append(f"Sender matched client {client.name} by {how}; their tier is {tier_name}.")
    priority: Priority = "emergency" if emergency else "normal"
    reasons.append(
        "Marked emergency (keyword, IVR choice or hint)."
        if emergency
        else "No emergency signal: normal priority."
    )
    target: Target = tier.targets.emergency if emergency else tier.targets.normal
    calendar = desk_calendar(policy)
    in_hours = calendar.in_hours(t)
    disposition: Disposition
    is_billable = False
    if in_hours:
        disposition = "dispatch"
        reasons.append(f"Received within {policy.desk.hours} hours: dispatch now.")
    elif target.after_hours == "page_oncall":
        disposition = "page_oncall"
        reasons.append(f"After hours and the {tier_name} {priority} target pages on-call.")
    elif billable and emergency and tier.billable_after_hours is not None:
        disposition = "page_oncall"
        is_billable = True
        reasons.append(
            f"After hours; the client accepted billable service ({tier.billable_after_hours.fee}),"
            " so on-call is paged."
        )
    else:
        disposition = "queue"
        reasons.append(f"After hours and the {tier_name} {priority} target queues until the next open time.")
    notify_at = calendar.next_open(t) if disposition == "queue" else t
    if is_billable and tier.billable_after_hours is not None:
        response_due = t + tier.billable_after_hours.respond_within
        reasons.append(f"Billable response within {_span(tier.billable_after_hours.respond_within)}.")
    elif target.clock == "24x7":
        response_due = t + target.respond_within
        reasons.append(f"Respond within {_span(target.respond_within)} around the clock (24x7 target).")
    else:
        response_due = calendar.business_add(t, target.respond_within)
        reasons.append(f"Respond within {_span(target.respond_within)} of business time.")
    oncall = oncall_at(policy, t)
    next_cursor = rotation_cursor
    assignee: str | None
    if disposition == "page_oncall":
        assignee = oncall
        reasons.append(f"Assigned to {oncall}, on call at this time.")
    elif (
        client is not None
        and client.assignment == "assigned"
        and client.primary_tech is not None
        and client.primary_tech not in client.excluded_techs
    ):
        assignee = client.primary_tech
        reasons.append(f"Assigned to {assignee}, the client's primary tech.")
    else:
        eligible = [
            tech.id
            for tech in policy.techs
            if client is None
            or (tech.id not in client.excluded_techs and set(client.skills_needed) <= set(tech.skills))
        ]
        if eligible:
            assignee = eligible[rotation_cursor % len(eligible)]
            next_cursor = rotation_cursor + 1
            reasons.append(f"Assigned to {assignee} by round-robin over {len(eligible)} eligible techs.")
        else:
            assignee = None
            reasons.append("No eligible tech: left unassigned.")
    decision = Decision(
        client_id=client.id if client is not None else UNKNOWN_CLIENT_ID,
        client_name=client.name if client is not None else UNKNOWN_CLIENT_NAME,
        tier=tier_name,
        priority=priority,
        in_hours=in_hours,
        disposition=disposition,
        notify_at=notify_at,
        response_due=response_due,
        assignee=assignee,
        oncall=oncall,
        billable=is_billable,
        reasons=tuple(reasons),
    )
    return decision, next_cursor


def _is_contact(client: Client, email: str | None, phone: str | None) -> bool:
    return matching_contact(client.contacts, email=email, phone=phone) is not None


def _span(d: timedelta) -> str:
    """A duration in words: 1 hour, 30 minutes, 2 hours 30 minutes."""
    seconds = int(d.total_seconds())
    parts = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 minutes"


span_text = _span
