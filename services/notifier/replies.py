"""A tech's SMS reply applied to their open tickets: accept, ETA, DELAY, DONE, or a help text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from services.contracts.events import TechReplied
from services.contracts.tickets import Ticket

HELP_LIMIT = 5  # help replies in a row per phone: past this a confused phone gets silence, not a loop
MAX_MINUTES = 24 * 60

Effect = Literal["accepted", "eta", "delayed", "resolved", "unchanged"]


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    ticket: Ticket  # the ticket after the reply
    effect: Effect
    newly_accepted: bool = False  # the reply also accepted it (ETA/DELAY on a dispatched ticket)


class Help(msgspec.Struct, frozen=True, kw_only=True):
    why: str
    open_numbers: tuple[str, ...] = ()


Outcome = Applied | Help

_DIGITS = re.compile(r"(\d{1,9})$")


def _same_number(given: str, number: str) -> bool:
    """'1042', 'sr1042' and 'SR-1042' all name SR-1042."""
    a, b = _DIGITS.search(given.strip()), _DIGITS.search(number)
    return a is not None and b is not None and int(a.group(1)) == int(b.group(1))


def open_tickets(tickets: Sequence[Ticket], tech_id: str) -> list[Ticket]:
    return [t for t in tickets if t.assignee == tech_id and t.status in ("dispatched", "accepted")]


def pick(reply: TechReplied, candidates: Sequence[Ticket]) -> Ticket | Help:
    """The ticket a reply is about: the one named, the only open one, or the only unaccepted one for A."""
    numbers = tuple(t.number for t in candidates)
    if reply.ticket_number:
        for ticket in candidates:
            if _same_number(reply.ticket_number, ticket.number):
                return ticket
        return Help(why=f"no open ticket {reply.ticket_number}", open_numbers=numbers)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return Help(why="no open tickets")
    if reply.verb == "accept":
        waiting = [t for t in candidates if t.status == "dispatched"]
        if len(waiting) == 1:
            return waiting[0]
    return Help(why="ambiguous: several open tickets", open_numbers=numbers)


def _minutes(reply: TechReplied) -> int | None:
    if reply.minutes is None or not 0 < reply.minutes <= MAX_MINUTES:
        return None
    return reply.minutes


def apply(reply: TechReplied, candidates: Sequence[Ticket], now: datetime) -> Outcome:
    """Apply one reply. Accept and DONE are idempotent; the app de-duplicates replies by id
    so a redelivered DELAY does not push the time twice."""
    if reply.verb == "unknown":
        return Help(why="not understood", open_numbers=tuple(t.number for t in candidates))
    chosen = pick(reply, candidates)
    if isinstance(chosen, Help):
        return chosen
    ticket = chosen
    accepting = ticket.status == "dispatched"
    accepted = msgspec.structs.replace(ticket, status="accepted", accepted_at=ticket.accepted_at or now)
    if reply.verb == "accept":
        minutes = _minutes(reply)
        if minutes is not None:
            accepted = msgspec.structs.replace(accepted, eta=now + timedelta(minutes=minutes))
        if not accepting and minutes is None:
            return Applied(ticket=ticket, effect="unchanged")
        return Applied(ticket=accepted, effect="accepted" if accepting else "eta", newly_accepted=accepting)
    if reply.verb == "eta":
        minutes = _minutes(reply)
        if minutes is None:
            return Help(why="ETA needs minutes", open_numbers=(ticket.number,))
        updated = msgspec.structs.replace(accepted, eta=now + timedelta(minutes=minutes))
        return Applied(ticket=updated, effect="eta", newly_accepted=accepting)
    if reply.verb == "delay":
        minutes = _minutes(reply)
        if minutes is None:
            return Help(why="DELAY needs minutes", open_numbers=(ticket.number,))
        # The delay pushes the current commitment (never into the past).
        base = ticket.eta or ticket.response_due or ticket.decision.response_due
        new_time = max(base, now) + timedelta(minutes=minutes)
        updated = msgspec.structs.replace(accepted, eta=new_time, response_due=new_time)
        return Applied(ticket=updated, effect="delayed", newly_accepted=accepting)
    # done
    resolved = msgspec.structs.replace(ticket, status="resolved", resolved_at=now)
    return Applied(ticket=resolved, effect="resolved")


class HelpCounter(msgspec.Struct, frozen=True, kw_only=True):
    """Consecutive help replies sent to one phone (kept in KV_WINDOWS by the app, expiring)."""

    in_row: int = 0


def next_help(counter: HelpCounter) -> tuple[bool, HelpCounter]:
    """(send a help text?, new counter). An understood reply resets the counter to zero."""
    if counter.in_row >= HELP_LIMIT:
        return False, counter
    return True, HelpCounter(in_row=counter.in_row + 1)
