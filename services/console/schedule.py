"""On-call shifts for the coming weeks, asked of the policy (handoffs and overrides), and iCalendar feeds."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from icalendar import Calendar, Event

from services.policy.calendar import local_instant, parse_clock
from services.policy.decide import oncall_at
from services.policy.model import WEEKDAYS, Policy


class Shift(msgspec.Struct, frozen=True, kw_only=True):
    tech: str
    start: datetime
    end: datetime
    override: bool = False


def _boundaries(policy: Policy, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in (start, end) where the pager may change hands: handoffs, override edges."""
    oncall = policy.oncall
    zone = ZoneInfo(oncall.timezone)
    hour, minute = parse_clock(oncall.handoff.time)
    weekday = WEEKDAYS.index(oncall.handoff.weekday)
    day = start.astimezone(zone).date()
    day -= timedelta(days=(day.weekday() - weekday) % 7)
    found: set[datetime] = set()
    while True:
        handoff = local_instant(day, hour, minute, zone)
        if handoff >= end:
            break
        if handoff > start:
            found.add(handoff)
        day += timedelta(days=7)
    for override in oncall.overrides:
        for edge in (override.from_, override.to):
            at = local_instant(edge.date(), edge.hour, edge.minute, zone) if edge.tzinfo is None else edge
            if start < at < end:
                found.add(at.astimezone(UTC))
    return sorted(found)


def shifts(policy: Policy, start: datetime, end: datetime) -> list[Shift]:
    """Who holds the pager from start to end, as contiguous shifts (the policy decides each one).

    The first shift begins at its real handoff (before `start`), so its iCalendar UID stays stable.
    """
    known = _boundaries(policy, start - timedelta(days=8), end)
    earlier = [b for b in known if b <= start]
    edges = [earlier[-1] if earlier else start, *(b for b in known if b > start), end]
    overrides = policy.oncall.overrides
    zone = ZoneInfo(policy.oncall.timezone)
    result: list[Shift] = []
    for begin, finish in itertools.pairwise(edges):
        tech = oncall_at(policy, begin)
        by_override = any(
            _aware(o.from_, zone) <= begin < _aware(o.to, zone) and o.tech == tech for o in overrides
        )
        if result and result[-1].tech == tech and result[-1].override == by_override:
            result[-1] = msgspec.structs.replace(result[-1], end=finish)
        else:
            result.append(Shift(tech=tech, start=begin, end=finish, override=by_override))
    return result


def _aware(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        return local_instant(value.date(), value.hour, value.minute, zone)
    return value


def next_handoff(policy: Policy, now: datetime, horizon: timedelta = timedelta(days=60)) -> Shift | None:
    """The next shift that starts after now with someone else on call."""
    upcoming = shifts(policy, now, now + horizon)
    return upcoming[1] if len(upcoming) > 1 else None


def feed_token(secret: str, tech: str) -> str:
    """The per-tech secret in the feed URL: a calendar app cannot sign in, so the URL is the key."""
    return hmac.new(secret.encode(), f"oncall-feed:{tech}".encode(), hashlib.sha256).hexdigest()[:32]


def feed_token_ok(secret: str, tech: str, token: str) -> bool:
    return hmac.compare_digest(feed_token(secret, tech), token)


def ical_feed(policy: Policy, tech: str, shifts_: list[Shift], *, stamp: datetime) -> bytes:
    """One VEVENT per shift of `tech`; UIDs are stable, so calendar apps update rather than duplicate."""
    cal = Calendar()
    cal.add("prodid", "-//Frontdesk//console on-call//EN")
    cal.add("version", "2.0")
    name = policy.tech(tech)
    cal.add("x-wr-calname", f"On call: {name.name if name else tech}")
    for shift in shifts_:
        if shift.tech != tech:
            continue
        event = Event()
        event.add("uid", f"oncall-{tech}-{int(shift.start.timestamp())}@frontdesk")
        event.add("summary", f"On call for {policy.desk.name}" + (" (override)" if shift.override else ""))
        event.add("dtstart", shift.start.astimezone(UTC))
        event.add("dtend", shift.end.astimezone(UTC))
        event.add("dtstamp", stamp.astimezone(UTC))
        cal.add_component(event)
    return bytes(cal.to_ical())
