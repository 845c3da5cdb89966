"""replies: accept / ETA / DELAY / DONE on the right ticket, help when unclear, bounded help replies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.contracts import TechReplied
from services.notifier import replies
from services.notifier.replies import Applied, Help, HelpCounter
from tests.notifier.ticketing import NOW, ticket

LATER = NOW + timedelta(minutes=5)


def reply(verb: Any, **kw: Any) -> TechReplied:
    return TechReplied(id="SM1", phone="+15550000001", received_at=LATER, verb=verb, **kw)


def test_accept_the_only_open_ticket() -> None:
    out = replies.apply(reply("accept"), [ticket()], LATER)
    assert isinstance(out, Applied)
    assert out.effect == "accepted" and out.newly_accepted
    assert out.ticket.status == "accepted" and out.ticket.accepted_at == LATER
    again = replies.apply(reply("accept"), [out.ticket], LATER + timedelta(minutes=1))
    assert isinstance(again, Applied) and again.effect == "unchanged"
    assert again.ticket.accepted_at == LATER


def test_accept_with_minutes_sets_eta() -> None:
    out = replies.apply(reply("accept", minutes=30), [ticket()], LATER)
    assert isinstance(out, Applied) and out.ticket.eta == LATER + timedelta(minutes=30)


def test_eta_accepts_and_needs_minutes() -> None:
    out = replies.apply(reply("eta", minutes=45), [ticket()], LATER)
    assert isinstance(out, Applied)
    assert (out.effect, out.newly_accepted, out.ticket.status) == ("eta", True, "accepted")
    assert out.ticket.eta == LATER + timedelta(minutes=45)
    assert isinstance(replies.apply(reply("eta"), [ticket()], LATER), Help)
    assert isinstance(replies.apply(reply("eta", minutes=0), [ticket()], LATER), Help)


def test_delay_pushes_the_commitment() -> None:
    t = ticket(status="accepted", accepted_at=NOW)
    out = replies.apply(reply("delay", minutes=30, reason="traffic"), [t], LATER)
    assert isinstance(out, Applied) and out.effect == "delayed"
    new_time = NOW + timedelta(hours=4, minutes=30)
    assert out.ticket.response_due == new_time and out.ticket.eta == new_time
    overdue = ticket(response_due=NOW - timedelta(hours=1))
    out = replies.apply(reply("delay", minutes=20), [overdue], LATER)
    assert isinstance(out, Applied) and out.ticket.response_due == LATER + timedelta(minutes=20)


def test_done_resolves() -> None:
    out = replies.apply(reply("done"), [ticket(status="accepted")], LATER)
    assert isinstance(out, Applied)
    assert out.ticket.status == "resolved" and out.ticket.resolved_at == LATER


def test_prefix_picks_among_several() -> None:
    tickets = [ticket("SR-1042"), ticket("SR-1043")]
    assert isinstance(replies.apply(reply("done"), tickets, LATER), Help)
    out = replies.apply(reply("done", ticket_number="1043"), tickets, LATER)
    assert isinstance(out, Applied) and out.ticket.number == "SR-1043"
    missing = replies.apply(reply("done", ticket_number="SR-9999"), tickets, LATER)
    assert isinstance(missing, Help) and missing.open_numbers == ("SR-1042", "SR-1043")


def test_bare_accept_takes_the_only_unaccepted_ticket() -> None:
    tickets = [ticket("SR-1042", status="accepted"), ticket("SR-1043")]
    out = replies.apply(reply("accept"), tickets, LATER)
    assert isinstance(out, Applied) and out.ticket.number == "SR-1043"


def test_unknown_and_no_tickets_get_help() -> None:
    assert isinstance(replies.apply(reply("unknown", text="hello?"), [ticket()], LATER), Help)
    assert replies.apply(reply("accept"), [], LATER) == Help(why="no open tickets")


def test_open_tickets_filters_assignee_and_status() -> None:
    tickets = [ticket("SR-1"), ticket("SR-2", assignee="bob"), ticket("SR-3", status="resolved")]
    assert [t.number for t in replies.open_tickets(tickets, "alice")] == ["SR-1"]


def test_at_most_five_help_replies_in_a_row() -> None:
    counter = HelpCounter()
    sent = 0
    for _ in range(8):
        ok, counter = replies.next_help(counter)
        sent += ok
    assert sent == 5 and counter.in_row == 5
