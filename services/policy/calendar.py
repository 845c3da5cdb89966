"""Business calendars: open windows in an IANA zone, holidays, and arithmetic in business time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from services.policy.model import WEEKDAYS, Calendar

_SEARCH_DAYS = 800  # a calendar with no open day in two years is treated as never open
ZERO = timedelta(0)


def parse_clock(text: str) -> tuple[int, int]:
    """'08:00' -> (8, 0); '24:00' is allowed as the end of a day."""
    hh, _, mm = text.strip().partition(":")
    hour, minute = int(hh), int(mm or "0")
    if not (0 <= hour <= 24 and 0 <= minute < 60) or (hour == 24 and minute):
        raise ValueError(f"bad time of day {text!r}")
    return hour, minute


def parse_window(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"bad window {text!r}, expected HH:MM-HH:MM")
    opens, closes = parse_clock(start), parse_clock(end)
    if closes <= opens:
        raise ValueError(f"window {text!r} closes before it opens")
    return opens, closes


def local_instant(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant.

    zoneinfo with fold=0 maps a nonexistent time (spring-forward gap) with the offset before the
    transition, i.e. moved forward by the gap, and an ambiguous time (fall-back) to its first
    occurrence: exactly the documented policy semantics.
    """
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


class BusinessCalendar:
    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self._week: dict[int, tuple[tuple[tuple[int, int], tuple[int, int]], ...]] = {
            index: tuple(sorted(parse_window(w) for w in calendar.week.get(name, ())))
            for index, name in enumerate(WEEKDAYS)
        }
        self._extra_closed = frozenset(calendar.dates)
        self._forced_open = frozenset(calendar.open)
        if not any(self._week.values()):
            raise ValueError("calendar has no open window in its week")

    # -- days -----------------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        if day in self._forced_open:
            return False
        if day in self._extra_closed:
            return True
        source = self.calendar.holidays
        if source is None:
            return False
        return day in _holidays(source.country, source.subdivision, day.year)

    def windows_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Open windows of one local day as UTC instants, [open, close)."""
        if self.is_holiday(day):
            return []
        result = []
        for (oh, om), (ch, cm) in self._week[day.weekday()]:
            opens = local_instant(day, oh, om, self.zone)
            closes = local_instant(day, ch, cm, self.zone)
            if closes > opens:  # a window swallowed by a DST gap has no length
                result.append((opens, closes))
        return result

    def _forward(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Windows that end after t, in order."""
        day = t.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            for opens, closes in self.windows_on(day):
                if closes > t:
                    yield opens, closes
            day += timedelta(days=1)
        raise ValueError(f"calendar never opens after {t.isoformat()}")

    def _backward(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Windows that open before t, latest first."""
        day = t.astimezone(self.zone).date() + timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            for opens, closes in reversed(self.windows_on(day)):
                if opens < t:
                    yield opens, closes
            day -= timedelta(days=1)
        raise ValueError(f"calendar never open before {t.isoformat()}")

    # -- instants -------------------------------------------------------------------------------

    def in_hours(self, t: datetime) -> bool:
        t = _aware(t)
        opens, closes = next(self._forward(t))
        return opens <= t < closes

    def next_open(self, t: datetime) -> datetime:
        t = _aware(t)
        opens, _ = next(self._forward(t))
        return max(opens, t)

    def business_add(self, t: datetime, d: timedelta) -> datetime:
        """Consume d of open time from next_open(t); a window's close when d ends exactly there."""
        t = _aware(t)
        if d < ZERO:
            return self.business_subtract(t, -d)
        remaining = d
        for opens, closes in self._forward(t):
            start = max(opens, t)
            available = closes - start
            if remaining <= available:
                return start + remaining
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover - _forward raises first

    def business_subtract(self, t: datetime, d: timedelta) -> datetime:
        """The latest x with business_add(x, d) == t (or <= t when t itself is out of hours)."""
        t = _aware(t)
        if d <= ZERO:
            return t if d == ZERO else self.business_add(t, -d)
        remaining = d
        for opens, closes in self._backward(t):
            end = min(closes, t)
            available = end - opens
            if remaining <= available:
                return end - remaining
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # observed=True adds the weekday a weekend holiday is observed on (July 4 2026 -> Fri July 3).
    table = holidays_lib.country_holidays(country, subdiv=subdivision, years=year, observed=True)
    return frozenset(table.keys())


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime where an instant was expected")
    return t.astimezone(UTC)
