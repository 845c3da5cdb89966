"""One way to write a time in every message: "Tue Dec 1, 8:13 AM CST", or "today by 12:00 PM"."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def clock(instant: datetime, zone: ZoneInfo) -> str:
    """'8:13 AM': the hour without a leading zero, as people write it."""
    local = instant.astimezone(zone)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def stamp(instant: datetime, zone: ZoneInfo) -> str:
    """'Tue Dec 1, 8:13 AM CST': the zone abbreviation avoids 'whose 8:13?' questions."""
    local = instant.astimezone(zone)
    return f"{local:%a %b} {local.day}, {clock(instant, zone)} {local.tzname()}"


def day(instant: datetime, zone: ZoneInfo) -> str:
    """'Mon Nov 23': the date alone, in the same style."""
    local = instant.astimezone(zone)
    return f"{local:%a %b} {local.day}"


def _day_word(instant: datetime, zone: ZoneInfo, now: datetime) -> str | None:
    """'today' or 'tomorrow' in the recipient's zone, else None (then the full stamp reads better)."""
    day = instant.astimezone(zone).date()
    today = now.astimezone(zone).date()
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return None


def by(instant: datetime, zone: ZoneInfo, now: datetime) -> str:
    """'today by 12:00 PM', 'tomorrow by 8:00 AM' or 'by Mon Dec 7, 8:00 AM CST'."""
    word = _day_word(instant, zone, now)
    return f"{word} by {clock(instant, zone)}" if word else f"by {stamp(instant, zone)}"


def at(instant: datetime, zone: ZoneInfo, now: datetime) -> str:
    """'today at 12:00 PM', 'tomorrow at 8:00 AM' or 'on Mon Dec 7, 8:00 AM CST'."""
    word = _day_word(instant, zone, now)
    return f"{word} at {clock(instant, zone)}" if word else f"on {stamp(instant, zone)}"
