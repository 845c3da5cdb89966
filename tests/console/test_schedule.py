"""On-call shifts from the policy (rotation, handoffs, overrides) and the iCalendar feed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from services.console.schedule import feed_token, feed_token_ok, ical_feed, next_handoff, shifts
from services.policy.decide import oncall_at
from services.policy.load import load_policy
from tests.console.conftest import NOW, POLICY

POLICY_ = load_policy(POLICY)


def test_shifts_follow_weekly_handoffs_and_the_christmas_override() -> None:
    found = shifts(POLICY_, NOW, NOW + timedelta(weeks=6))
    # Mon 23 Nov 08:00 CST is 14:00 UTC: bob's week began at that handoff.
    assert (found[0].tech, found[0].start) == ("bob", datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    assert [s.tech for s in found[:4]] == ["bob", "carol", "alice", "bob"]
    override = [s for s in found if s.override]
    assert [(s.tech, s.start, s.end) for s in override] == [
        ("carol", datetime(2026, 12, 24, 23, 0, tzinfo=UTC), datetime(2026, 12, 28, 14, 0, tzinfo=UTC))
    ]
    # Every shift agrees with the policy's own answer at its start and just before its end.
    for shift in found:
        assert oncall_at(POLICY_, shift.start) == shift.tech
        assert oncall_at(POLICY_, shift.end - timedelta(seconds=1)) == shift.tech
    assert all(a.end == b.start for a, b in itertools.pairwise(found))


def test_next_handoff_is_the_next_different_person() -> None:
    upcoming = next_handoff(POLICY_, NOW)
    assert upcoming is not None
    assert (upcoming.tech, upcoming.start) == ("carol", datetime(2026, 11, 30, 14, 0, tzinfo=UTC))


def test_feed_lists_only_that_techs_shifts_with_stable_uids() -> None:
    found = shifts(POLICY_, NOW, NOW + timedelta(weeks=6))
    first = Calendar.from_ical(ical_feed(POLICY_, "carol", found, stamp=NOW))
    later = shifts(POLICY_, NOW + timedelta(hours=5), NOW + timedelta(weeks=6))
    again = Calendar.from_ical(ical_feed(POLICY_, "carol", later, stamp=NOW + timedelta(hours=5)))
    events = [e for e in first.walk("VEVENT")]
    assert len(events) == 3  # her rotation week, the week before Christmas, the override
    assert [str(e["uid"]) for e in events] == [str(e["uid"]) for e in again.walk("VEVENT")]
    assert "override" in str(events[-1]["summary"])


def test_feed_tokens_are_per_tech() -> None:
    token = feed_token("secret-a", "bob")
    assert feed_token_ok("secret-a", "bob", token)
    assert not feed_token_ok("secret-a", "carol", token)
    assert not feed_token_ok("secret-b", "bob", token)
