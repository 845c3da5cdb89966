"""timers: the plan for a dispatched ticket, firing meanings, and the escalation order."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.notifier import timers
from services.notifier.timers import Breach, Escalate, Nothing, Timer, WarnLate
from tests.notifier.ticketing import NOW, ticket

ROTATION = ("alice", "bob", "carol")
ACK = timedelta(minutes=10)
WARN = timedelta(minutes=15)


def test_plan_has_ack_warn_and_due() -> None:
    plan = timers.plan(ticket(), dispatched_at=NOW, ack_timeout=ACK, warn_before=WARN)
    assert [(t.kind, t.due) for t in plan] == [
        ("ack", NOW + ACK),
        ("warn", NOW + timedelta(hours=4) - WARN),
        ("due", NOW + timedelta(hours=4)),
    ]
    assert plan[0].key == "notifier.ack.SR-1042"
    assert plan[0].fire_id != Timer(kind="ack", ticket_number="SR-1042", due=NOW + 2 * ACK).fire_id


def test_warn_in_business_time_and_dropped_when_too_late() -> None:
    calls: list[tuple[datetime, timedelta]] = []

    def business_subtract(t: datetime, d: timedelta) -> datetime:
        calls.append((t, d))
        return t - d - timedelta(hours=16)  # e.g. the window crosses a closed night

    plan = timers.plan(
        ticket(response_due=NOW + timedelta(days=1)),
        dispatched_at=NOW,
        ack_timeout=ACK,
        warn_before=WARN,
        business_subtract=business_subtract,
    )
    assert calls == [(NOW + timedelta(days=1), WARN)]
    assert plan[1].due == NOW + timedelta(days=1) - WARN - timedelta(hours=16)
    tight = timers.plan(
        ticket(response_due=NOW + timedelta(minutes=10)), dispatched_at=NOW, ack_timeout=ACK, warn_before=WARN
    )
    assert [t.kind for t in tight] == ["ack", "due"]


def test_premium_emergency_warns_on_the_wall_clock() -> None:
    assert timers.warn_uses_business_time(business_clock=True, tier="standard", emergency=True)
    assert not timers.warn_uses_business_time(business_clock=True, tier="premium", emergency=True)
    assert timers.warn_uses_business_time(business_clock=True, tier="premium", emergency=False)
    assert not timers.warn_uses_business_time(business_clock=False, tier="standard", emergency=False)


def test_escalation_walks_the_rotation_then_ops() -> None:
    assert timers.escalation_order(ROTATION, "bob") == ["carol", "alice"]
    assert timers.escalation_order(ROTATION, "tech-zed") == list(ROTATION)
    ack = Timer(kind="ack", ticket_number="SR-1042", due=NOW + ACK)
    seen = []
    for step in range(4):
        current = ticket(escalation_step=step)
        fired = timers.on_fire(
            Timer(kind="ack", ticket_number="SR-1042", due=ack.due, step=step),
            current,
            rotation=ROTATION,
            warn_before=WARN,
        )
        seen.append(fired)
    assert seen[:3] == [
        Escalate(step=1, tech="bob"),
        Escalate(step=2, tech="carol"),
        Escalate(step=3, tech=None),
    ]
    assert isinstance(seen[3], Nothing)


def test_ack_timer_does_nothing_once_accepted_or_superseded() -> None:
    ack = Timer(kind="ack", ticket_number="SR-1042", due=NOW + ACK, step=0)
    accepted = ticket(status="accepted", accepted_at=NOW)
    assert timers.on_fire(ack, accepted, rotation=ROTATION, warn_before=WARN) == Nothing(
        why="status accepted"
    )
    later = ticket(escalation_step=1, assignee="bob")
    assert isinstance(timers.on_fire(ack, later, rotation=ROTATION, warn_before=WARN), Nothing)


def test_warn_and_due_meanings() -> None:
    due = NOW + timedelta(hours=4)
    warn = Timer(kind="warn", ticket_number="SR-1042", due=due - WARN)
    at_due = Timer(kind="due", ticket_number="SR-1042", due=due)
    waiting = ticket()
    assert timers.on_fire(warn, waiting, rotation=ROTATION, warn_before=WARN) == WarnLate(
        new_estimate=due + WARN
    )
    late_eta = ticket(status="accepted", eta=due + timedelta(minutes=40))
    assert timers.on_fire(warn, late_eta, rotation=ROTATION, warn_before=WARN) == WarnLate(
        new_estimate=due + timedelta(minutes=40)
    )
    on_time = ticket(status="accepted", eta=due - timedelta(minutes=30))
    assert isinstance(timers.on_fire(warn, on_time, rotation=ROTATION, warn_before=WARN), Nothing)
    assert timers.on_fire(at_due, waiting, rotation=ROTATION, warn_before=WARN) == Breach()
    assert isinstance(timers.on_fire(at_due, on_time, rotation=ROTATION, warn_before=WARN), Nothing)
    resolved = ticket(status="resolved")
    for timer in (warn, at_due):
        assert timers.on_fire(timer, resolved, rotation=ROTATION, warn_before=WARN) == Nothing(why="resolved")
