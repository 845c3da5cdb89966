"""times: one style for every message, in the recipient's zone, with today/tomorrow where they read better."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.wording import times

CHICAGO = ZoneInfo("America/Chicago")
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 1, 13, 13, tzinfo=UTC)  # Tue Dec 1, 7:13 AM CST


def test_stamp_is_one_style_with_the_zone() -> None:
    assert times.stamp(datetime(2026, 12, 1, 14, 13, tzinfo=UTC), CHICAGO) == "Tue Dec 1, 8:13 AM CST"
    assert times.stamp(datetime(2026, 7, 4, 0, 5, tzinfo=UTC), CHICAGO) == "Fri Jul 3, 7:05 PM CDT"
    assert times.stamp(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), LONDON) == "Tue Dec 1, 12:00 PM GMT"


def test_relative_words_today_and_tomorrow() -> None:
    noon = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert times.by(noon, CHICAGO, NOW) == "today by 12:00 PM"
    assert times.at(noon, CHICAGO, NOW) == "today at 12:00 PM"
    tomorrow = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert times.by(tomorrow, CHICAGO, NOW) == "tomorrow by 8:00 AM"
    later = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert times.by(later, CHICAGO, NOW) == "by Mon Dec 7, 8:00 AM CST"
    assert times.at(later, CHICAGO, NOW) == "on Mon Dec 7, 8:00 AM CST"


def test_today_is_the_recipients_day_not_utcs() -> None:
    # 11:30 PM in Chicago on Dec 1 is already Dec 2 in UTC and in London.
    late = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)
    evening = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 5:00 PM Chicago, 11:00 PM London
    assert times.by(late, CHICAGO, evening) == "today by 11:30 PM"
    assert times.by(late, LONDON, evening) == "tomorrow by 5:30 AM"
    assert times.clock(datetime(2026, 12, 1, 6, 0, tzinfo=UTC), CHICAGO) == "12:00 AM"


def test_day_alone() -> None:
    assert times.day(datetime(2026, 11, 13, 3, 0, tzinfo=UTC), CHICAGO) == "Thu Nov 12"
