"""The SLA clock of an open ticket, as the Now page shows it: queued, due in, at risk or breached."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from services.contracts.tickets import Ticket

ClockState = Literal["queued", "due", "at_risk", "breached", "accepted", "late"]


class TicketClock(msgspec.Struct, frozen=True, kw_only=True):
    state: ClockState
    label: str  # "due in 42 min", "breached 5 min ago", "queued until Tue 08:00 CST"
    due: datetime
    seconds_left: int  # negative once the commitment has passed


def span(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    seconds = abs(int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def clock_of(ticket: Ticket, now: datetime, *, warn_before: timedelta, local: str) -> TicketClock:
    """`local` is the due time already written in the desk's zone (the page's formatting)."""
    due = ticket.response_due or ticket.decision.response_due
    left = (due - now).total_seconds()
    if ticket.status == "queued" and now < ticket.decision.notify_at:
        return TicketClock(state="queued", label=f"queued, due {local}", due=due, seconds_left=int(left))
    if ticket.status == "accepted":
        if ticket.eta is not None and ticket.eta > due:
            return TicketClock(
                state="late",
                label=f"accepted, ETA {span((ticket.eta - due).total_seconds())} past due",
                due=due,
                seconds_left=int(left),
            )
        return TicketClock(state="accepted", label="accepted", due=due, seconds_left=int(left))
    if left < 0:
        return TicketClock(
            state="breached", label=f"breached {span(left)} ago", due=due, seconds_left=int(left)
        )
    if left <= warn_before.total_seconds():
        return TicketClock(
            state="at_risk", label=f"at risk: due in {span(left)}", due=due, seconds_left=int(left)
        )
    return TicketClock(state="due", label=f"due in {span(left)}", due=due, seconds_left=int(left))


def load_by_tech(tickets: list[Ticket], techs: list[str]) -> dict[str, int]:
    """Open tickets per tech (every tech listed, idle ones with 0); others under their own id."""
    load = dict.fromkeys(techs, 0)
    for ticket in tickets:
        if ticket.status != "resolved" and ticket.assignee:
            load[ticket.assignee] = load.get(ticket.assignee, 0) + 1
    return load


def state_text(ticket: Ticket) -> str:
    """Where the work stands in the desk's words: queued, paged, dispatched, escalated, accepted, delayed."""
    if ticket.status == "dispatched":
        text = "paged" if ticket.decision.disposition == "page_oncall" else "dispatched"
        if ticket.escalation_step:
            text = f"escalated ({ticket.escalation_step})"
    else:
        text = ticket.status
    if ticket.response_due is not None and ticket.response_due > ticket.decision.response_due:
        text += ", delayed"
    return text
