"""The Now page's clock per ticket, and each tech's open load."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from services.console.clocks import clock_of, load_by_tech, span, state_text
from tests.console.conftest import NOW, make_ticket

WARN = timedelta(minutes=15)


def state(ticket_changes: dict[str, Any], at_minutes: float) -> tuple[str, str]:
    ticket = make_ticket(**ticket_changes)
    clock = clock_of(ticket, NOW + timedelta(minutes=at_minutes), warn_before=WARN, local="Mon 13:00")
    return clock.state, clock.label


def test_due_at_risk_and_breached_follow_the_commitment() -> None:
    assert state({}, 0) == ("due", "due in 4 h 00 min")
    assert state({}, 220) == ("due", "due in 20 min")
    assert state({}, 226) == ("at_risk", "at risk: due in 14 min")
    assert state({}, 245) == ("breached", "breached 5 min ago")


def test_a_delay_moves_the_clock_with_response_due() -> None:
    later = NOW + timedelta(hours=6)
    assert state({"response_due": later}, 245)[0] == "due"


def test_queued_until_the_desk_opens_then_running() -> None:
    ticket = make_ticket(status="queued")
    queued = msgspec.structs.replace(
        ticket, decision=msgspec.structs.replace(ticket.decision, notify_at=NOW + timedelta(hours=1))
    )
    clock = clock_of(queued, NOW, warn_before=WARN, local="Mon 13:00")
    assert (clock.state, clock.label) == ("queued", "queued, due Mon 13:00")
    opened = clock_of(queued, NOW + timedelta(hours=2), warn_before=WARN, local="Mon 13:00")
    assert opened.state == "due"


def test_accepted_is_calm_unless_the_eta_is_past_due() -> None:
    assert state({"status": "accepted"}, 300)[0] == "accepted"
    late = state({"status": "accepted", "eta": NOW + timedelta(hours=5)}, 10)
    assert late == ("late", "accepted, ETA 1 h 00 min past due")


def test_span_reads_naturally() -> None:
    assert [span(s) for s in (5, 600, 3 * 3600 + 300, 3 * 86400 + 7200)] == [
        "5 s",
        "10 min",
        "3 h 05 min",
        "3 d 2 h",
    ]


def test_load_counts_open_tickets_per_tech_including_idle_ones() -> None:
    tickets = [
        make_ticket("SR-1"),
        make_ticket("SR-2", assignee="carol"),
        make_ticket("SR-3", status="resolved"),
        make_ticket("SR-4", assignee="ops"),
    ]
    assert load_by_tech(tickets, ["alice", "bob", "carol"]) == {"alice": 1, "bob": 0, "carol": 1, "ops": 1}


def test_state_reads_like_the_desk_talks() -> None:
    paged = make_ticket()
    paged = msgspec.structs.replace(
        paged, decision=msgspec.structs.replace(paged.decision, disposition="page_oncall")
    )
    assert state_text(paged) == "paged"
    assert state_text(make_ticket(escalation_step=2)) == "escalated (2)"
    assert state_text(make_ticket(status="queued")) == "queued"
    delayed = make_ticket(status="accepted", response_due=NOW + timedelta(hours=9))
    assert state_text(delayed) == "accepted, delayed"
