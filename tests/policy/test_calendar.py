"""Business calendar arithmetic: boundaries, weekends, holidays, DST both ways, and the inverse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.policy.calendar import BusinessCalendar
from services.policy.model import Calendar, HolidaySource

WEEKDAYS_9_TO_5: dict[str, tuple[str, ...]] = {
    d: ("08:00-17:00",) for d in ("mon", "tue", "wed", "thu", "fri")
}
CHICAGO = BusinessCalendar(
    Calendar(timezone="America/Chicago", week=WEEKDAYS_9_TO_5, holidays=HolidaySource(country="US"))
)


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:  # noqa: PLR0917
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (z(2026, 11, 23, 22, 59, 59), True),  # Monday 16:59:59 CST
        (z(2026, 11, 23, 23, 0, 0), False),  # Monday 17:00:00 CST: windows are half-open
        (z(2026, 11, 23, 14, 0, 0), True),  # Monday 08:00 CST opens
        (z(2026, 11, 23, 13, 59, 59), False),
        (z(2026, 11, 21, 18, 0), False),  # Saturday
        (z(2026, 7, 3, 15, 0), False),  # Friday July 3 2026: observed Independence Day
        (z(2026, 7, 2, 15, 0), True),  # Thursday before it
        (z(2026, 3, 9, 13, 30), True),  # Monday after spring-forward: 08:30 CDT
        (z(2026, 3, 9, 14, 30), True),  # 09:30 CDT
        (z(2026, 3, 9, 12, 30), False),  # 07:30 CDT
        (z(2026, 11, 2, 13, 30), False),  # Monday after fall-back: 07:30 CST
        (z(2026, 11, 2, 14, 0), True),  # 08:00 CST
    ],
)
def test_in_hours(instant: datetime, expected: bool) -> None:
    assert CHICAGO.in_hours(instant) is expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (z(2026, 11, 23, 16, 0), z(2026, 11, 23, 16, 0)),  # in hours: itself
        (z(2026, 11, 21, 0, 0), z(2026, 11, 23, 14, 0)),  # Friday 18:00 CST -> Monday 08:00 CST
        (z(2026, 11, 23, 23, 0), z(2026, 11, 24, 14, 0)),  # 17:00 sharp -> next morning
        (z(2026, 7, 2, 23, 0), z(2026, 7, 6, 13, 0)),  # Thursday close -> past the observed holiday
        (z(2026, 3, 7, 0, 0), z(2026, 3, 9, 13, 0)),  # weekend of spring-forward: 08:00 CDT = 13:00Z
        (z(2026, 10, 31, 0, 0), z(2026, 11, 2, 14, 0)),  # weekend of fall-back: 08:00 CST = 14:00Z
    ],
)
def test_next_open(instant: datetime, expected: datetime) -> None:
    assert CHICAGO.next_open(instant) == expected


@pytest.mark.parametrize(
    ("instant", "span", "expected"),
    [
        (z(2026, 11, 23, 16, 0), timedelta(hours=4), z(2026, 11, 23, 20, 0)),  # same day
        (z(2026, 11, 23, 21, 0), timedelta(hours=2), z(2026, 11, 23, 23, 0)),  # exactly the close
        (z(2026, 11, 20, 22, 0), timedelta(hours=2), z(2026, 11, 23, 15, 0)),  # Fri 16:00 -> Mon 09:00
        (z(2026, 11, 21, 0, 0), timedelta(hours=8), z(2026, 11, 23, 22, 0)),  # queued Fri night
        (z(2026, 11, 23, 14, 0), timedelta(hours=9), z(2026, 11, 23, 23, 0)),  # a full day
        (z(2026, 11, 23, 14, 0), timedelta(hours=10), z(2026, 11, 24, 15, 0)),
        (z(2026, 7, 2, 21, 0), timedelta(hours=2), z(2026, 7, 6, 14, 0)),  # skips observed July 3
        (z(2026, 3, 6, 22, 0), timedelta(hours=2), z(2026, 3, 9, 14, 0)),  # CST Fri -> CDT Mon
        (z(2026, 10, 30, 21, 0), timedelta(hours=2), z(2026, 11, 2, 15, 0)),  # CDT Fri -> CST Mon
        (z(2026, 11, 23, 16, 0), timedelta(0), z(2026, 11, 23, 16, 0)),
    ],
)
def test_business_add(instant: datetime, span: timedelta, expected: datetime) -> None:
    assert CHICAGO.business_add(instant, span) == expected


def _sunday_calendar(zone: str, window: str) -> BusinessCalendar:
    return BusinessCalendar(Calendar(timezone=zone, week={"sun": (window,)}))


@pytest.mark.parametrize(
    ("zone", "window", "day", "opens", "closes"),
    [
        # Spring forward: 02:00-03:00 does not exist, so 01:00-04:00 lasts two hours.
        ("America/Chicago", "01:00-04:00", date(2026, 3, 8), z(2026, 3, 8, 7), z(2026, 3, 8, 9)),
        # A window opening inside the gap opens one hour later on the wall (moved forward by the gap).
        ("America/Chicago", "02:30-05:00", date(2026, 3, 8), z(2026, 3, 8, 8, 30), z(2026, 3, 8, 10)),
        # Fall back: 01:30 happens twice; the first (CDT) counts, so 01:30-03:00 lasts 2.5 hours.
        ("America/Chicago", "01:30-03:00", date(2026, 11, 1), z(2026, 11, 1, 6, 30), z(2026, 11, 1, 9)),
        ("Europe/London", "00:00-03:00", date(2026, 3, 29), z(2026, 3, 29, 0), z(2026, 3, 29, 2)),
        ("Europe/London", "01:30-04:00", date(2026, 3, 29), z(2026, 3, 29, 1, 30), z(2026, 3, 29, 3)),
        ("Europe/London", "01:30-03:00", date(2026, 10, 25), z(2026, 10, 25, 0, 30), z(2026, 10, 25, 3)),
    ],
)
def test_dst_windows(zone: str, window: str, day: date, opens: datetime, closes: datetime) -> None:
    calendar = _sunday_calendar(zone, window)
    assert calendar.windows_on(day) == [(opens, closes)]
    assert calendar.next_open(opens - timedelta(hours=5)) == opens
    assert calendar.business_add(opens, closes - opens) == closes
    assert not calendar.in_hours(closes)


def test_extra_closed_and_forced_open_days() -> None:
    calendar = BusinessCalendar(
        Calendar(
            timezone="America/Chicago",
            week=WEEKDAYS_9_TO_5,
            holidays=HolidaySource(country="US"),
            dates=(date(2026, 12, 24),),
            open=(date(2026, 7, 3),),
        )
    )
    assert not calendar.in_hours(z(2026, 12, 24, 16))  # Thursday, closed by `dates`
    assert calendar.in_hours(z(2026, 7, 3, 15))  # observed holiday, reopened by `open`
    assert not calendar.in_hours(z(2026, 12, 25, 16))  # Christmas from the holidays package


@pytest.mark.parametrize(
    "instant",
    [
        z(2026, 11, 23, 16, 0),
        z(2026, 11, 23, 23, 0),  # exactly a close
        z(2026, 11, 24, 14, 30),
        z(2026, 3, 9, 13, 15),  # Monday after spring-forward
        z(2026, 11, 2, 14, 5),  # Monday after fall-back
        z(2026, 7, 6, 13, 10),  # Monday after the observed holiday
    ],
)
@pytest.mark.parametrize(
    "span", [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=20)]
)
def test_business_subtract_is_the_latest_inverse(instant: datetime, span: timedelta) -> None:
    start = CHICAGO.business_subtract(instant, span)
    assert start < instant
    assert CHICAGO.business_add(start, span) == instant
    # Any later start finishes later: start is the latest such instant.
    assert CHICAGO.business_add(start + timedelta(seconds=1), span) > instant


def test_business_subtract_from_out_of_hours_lands_before_the_close() -> None:
    # Saturday noon minus 1h of business time: Friday 16:00 CST.
    assert CHICAGO.business_subtract(z(2026, 11, 21, 18), timedelta(hours=1)) == z(2026, 11, 20, 22)
