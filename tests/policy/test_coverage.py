"""Coverage wording for the IVR and client acknowledgments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from services.policy.coverage import describe
from services.policy.load import load_policy
from services.policy.model import Billable, Policy

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(EXAMPLE)


def test_after_hours_complimentary_emergency_offers_the_fee(policy: Policy) -> None:
    globex = policy.client("globex")
    coverage = describe(
        policy, globex, datetime(2026, 11, 21, 0, tzinfo=UTC), emergency=True
    )  # Fri 18:00 CST
    assert (coverage.in_hours, coverage.disposition) == (False, "queue")
    assert coverage.respond_by == datetime(2026, 11, 23, 18, tzinfo=UTC)
    assert coverage.offer == Billable(fee="$250", respond_within=timedelta(hours=2))
    assert coverage.hours_text == "weekdays 8 AM to 5 PM"


def test_an_empty_fee_is_no_offer(policy: Policy) -> None:
    # The menu names no fee it does not have, so pressing 9 must not be taken as accepting one.
    tiers = dict(policy.tiers)
    tiers["complimentary"] = msgspec.structs.replace(
        tiers["complimentary"], billable_after_hours=Billable(fee="", respond_within=timedelta(hours=2))
    )
    no_fee = msgspec.structs.replace(policy, tiers=tiers)
    coverage = describe(
        no_fee, no_fee.client("globex"), datetime(2026, 11, 21, 0, tzinfo=UTC), emergency=True
    )
    assert coverage.disposition == "queue"
    assert coverage.offer is None


def test_normal_request_gets_no_fee_offer(policy: Policy) -> None:
    coverage = describe(
        policy, policy.client("globex"), datetime(2026, 11, 21, 0, tzinfo=UTC), emergency=False
    )
    assert coverage.offer is None
    assert coverage.respond_by == datetime(2026, 11, 23, 22, tzinfo=UTC)  # Monday 4:00 PM CST


def test_premium_emergency_after_hours_pages(policy: Policy) -> None:
    coverage = describe(policy, policy.client("acme"), datetime(2026, 11, 21, 0, tzinfo=UTC), emergency=True)
    assert coverage.disposition == "page_oncall"
    assert coverage.respond_by == datetime(2026, 11, 21, 1, tzinfo=UTC)  # Friday 7:00 PM CST
    assert coverage.offer is None


def test_unknown_sender_in_hours_is_dispatched(policy: Policy) -> None:
    coverage = describe(
        policy, None, datetime(2026, 11, 23, 16, tzinfo=UTC), emergency=False
    )  # Mon 10:00 CST; 8 business hours
    assert coverage.in_hours and coverage.disposition == "dispatch"
    assert coverage.respond_by == datetime(2026, 11, 24, 15, tzinfo=UTC)  # Tuesday 9:00 AM CST
