"""The routing decision table, identification and the on-call rotation, on the example policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from services.policy.decide import decide, identify, oncall_at
from services.policy.load import load_policy
from services.policy.model import Override, Policy

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(EXAMPLE)


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:  # noqa: PLR0917
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ({"email": "jane@acme.example"}, "acme"),
        ({"email": "JANE@ACME.EXAMPLE"}, "acme"),
        ({"email": "someone@plant.acme.example"}, "acme"),  # subdomain of a client domain
        ({"phone": "+13125550160"}, "globex"),
        ({"email": "peter@initech.example"}, "initech"),
        ({"email": "stranger@example.org"}, None),
        ({"phone": "+19995550000"}, None),
        ({"email": "x@notacme.example"}, None),  # suffix without a dot is not a subdomain
    ],
)
def test_identify(policy: Policy, sender: dict[str, str], expected: str | None) -> None:
    client = identify(policy, **sender)
    assert (client.id if client else None) == expected


# Monday 2026-11-23 10:00 CST = 16:00Z; Friday 2026-11-20 18:00 CST = Saturday 00:00Z.
MONDAY_10 = z(2026, 11, 23, 16)
FRIDAY_18 = z(2026, 11, 21, 0)


@pytest.mark.parametrize(
    ("email", "phone", "at", "emergency", "billable", "want"),
    [
        # In hours: dispatch now; premium normal is 4h of business time; Acme's primary tech.
        ("jane@acme.example", None, MONDAY_10, False, False,
         dict(client_id="acme", tier="premium", disposition="dispatch", notify_at=MONDAY_10,
              response_due=z(2026, 11, 23, 20), assignee="alice", billable=False, in_hours=True)),
        # After hours premium emergency: page on-call, 1h around the clock.
        ("jane@acme.example", None, FRIDAY_18, True, False,
         dict(disposition="page_oncall", notify_at=FRIDAY_18, response_due=FRIDAY_18 + timedelta(hours=1),
              assignee="alice", in_hours=False)),
        # After hours complimentary normal: queue to Monday 08:00, due after 8 business hours.
        (None, "+13125550160", FRIDAY_18, False, False,
         dict(client_id="globex", disposition="queue", notify_at=z(2026, 11, 23, 14),
              response_due=z(2026, 11, 23, 22), assignee="alice")),
        # Complimentary emergency without the billable offer: still queued, 4 business hours.
        ("hank@globex.example", None, FRIDAY_18, True, False,
         dict(disposition="queue", response_due=z(2026, 11, 23, 18), billable=False)),
        # Complimentary emergency, billable accepted: on-call now, 2h.
        ("hank@globex.example", None, FRIDAY_18, True, True,
         dict(disposition="page_oncall", notify_at=FRIDAY_18, response_due=FRIDAY_18 + timedelta(hours=2),
              billable=True, assignee="alice")),
        # Billable only applies to emergencies.
        ("hank@globex.example", None, FRIDAY_18, False, True, dict(disposition="queue", billable=False)),
        # Unknown sender: the unknown_sender_tier decides.
        ("stranger@example.org", None, FRIDAY_18, False, False,
         dict(client_id="unknown", client_name="Unknown sender", tier="complimentary", disposition="queue")),
        # A London client writing at 09:00 GMT is outside the Chicago desk's hours (03:00 CST).
        ("peter@initech.example", None, z(2026, 11, 23, 9), False, False,
         dict(client_id="initech", disposition="queue", notify_at=z(2026, 11, 23, 14),
              response_due=z(2026, 11, 23, 18))),
        # 16:59:59 is in hours, 17:00:00 is not.
        ("jane@acme.example", None, z(2026, 11, 23, 22, 59, 59), False, False, dict(disposition="dispatch")),
        ("jane@acme.example", None, z(2026, 11, 23, 23), False, False,
         dict(disposition="queue", notify_at=z(2026, 11, 24, 14))),
        # The observed July 4 holiday (Friday July 3 2026) is closed all day.
        ("hank@globex.example", None, z(2026, 7, 3, 15), False, False,
         dict(disposition="queue", notify_at=z(2026, 7, 6, 13))),
    ],
)  # fmt: skip
def test_decide(  # noqa: PLR0917 - one table row per case reads best
    policy: Policy,
    email: str | None,
    phone: str | None,
    at: datetime,
    emergency: bool,
    billable: bool,
    want: dict[str, object],
) -> None:
    decision, _ = decide(policy, email=email, phone=phone, at=at, emergency=emergency, billable=billable)
    got = msgspec.structs.asdict(decision)
    assert {key: got[key] for key in want} == want
    assert decision.priority == ("emergency" if emergency else "normal")
    assert decision.oncall == oncall_at(policy, at)
    assert len(decision.reasons) >= 4 and all(r.endswith(".") for r in decision.reasons)


def test_round_robin_skips_excluded_and_unskilled(policy: Policy) -> None:
    # Globex excludes bob and needs m365: alice and carol alternate.
    seen = []
    cursor = 0
    for _ in range(4):
        decision, cursor = decide(
            policy,
            email="hank@globex.example",
            phone=None,
            at=MONDAY_10,
            emergency=False,
            rotation_cursor=cursor,
        )
        seen.append(decision.assignee)
    assert seen == ["alice", "carol", "alice", "carol"]
    assert cursor == 4


def test_assigned_client_leaves_the_cursor_alone(policy: Policy) -> None:
    decision, cursor = decide(
        policy, email="jane@acme.example", phone=None, at=MONDAY_10, emergency=False, rotation_cursor=7
    )
    assert (decision.assignee, cursor) == ("alice", 7)


@pytest.mark.parametrize(
    ("at", "tech"),
    [
        (z(2026, 1, 5, 16), "alice"),  # start date, before any handoff
        (z(2026, 1, 12, 13, 59, 59), "alice"),  # Monday 07:59:59 CST
        (z(2026, 1, 12, 14), "bob"),  # Monday 08:00 CST: handoff
        (z(2026, 1, 19, 14), "carol"),
        (z(2026, 1, 26, 14), "alice"),
        # Handoff k is on Monday 2026-01-12 + 7(k-1) days: k=9 on March 9, k=43 on November 2.
        (z(2026, 3, 9, 12, 59), "carol"),  # Monday after spring-forward, 07:59 CDT: k=8
        (z(2026, 3, 9, 13), "alice"),  # 08:00 CDT = 13:00Z: k=9
        (z(2026, 11, 2, 13, 30), "alice"),  # after fall-back 07:30 CST: k=42, not yet
        (z(2026, 11, 2, 14), "bob"),  # 08:00 CST = 14:00Z: k=43
    ],
)
def test_oncall_rotation(policy: Policy, at: datetime, tech: str) -> None:
    assert oncall_at(policy, at) == tech


def test_oncall_override_wins_inside_its_window(policy: Policy) -> None:
    changed = msgspec.structs.replace(
        policy,
        oncall=msgspec.structs.replace(
            policy.oncall,
            start=date(2026, 1, 5),
            overrides=(Override(tech="bob", from_=datetime(2026, 1, 6, 17), to=datetime(2026, 1, 7, 8)),),
        ),
    )
    assert oncall_at(changed, z(2026, 1, 6, 22, 59)) == "alice"
    assert oncall_at(changed, z(2026, 1, 6, 23)) == "bob"  # 17:00 CST
    assert oncall_at(changed, z(2026, 1, 7, 13, 59)) == "bob"
    assert oncall_at(changed, z(2026, 1, 7, 14)) == "alice"  # 08:00 CST: override over
