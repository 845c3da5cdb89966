"""The desk's words for what a client's plan covers now."""

from __future__ import annotations

from datetime import UTC, datetime

from services.console.desk import Desk
from services.console.store import Store
from services.policy.load import load_policy
from tests.console.conftest import POLICY


def test_an_after_hours_emergency_names_the_billable_option_only_when_it_is_offered() -> None:
    store = Store(":memory:")
    try:
        desk = Desk(load_policy(POLICY), store)
        friday_evening = datetime(2026, 11, 21, 0, tzinfo=UTC)  # Friday 6:00 PM in Chicago
        normal, urgent = desk.coverage("globex", friday_evening)
        assert "Billable after-hours option: $250, response within 2 hours." in urgent
        assert "Billable" not in normal
        assert "Billable" not in desk.coverage("acme", friday_evening)[1]  # premium: paged, no offer
    finally:
        store.close()
