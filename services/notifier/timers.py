"""Durable timer plan for a dispatched ticket, what each firing means, and the escalation order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from services.contracts.tickets import Ticket

TimerKind = Literal["ack", "warn", "due"]
OWNER = "notifier"


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    kind: TimerKind
    ticket_number: str
    due: datetime
    step: int = 0  # escalation step the ack timer belongs to (a later step supersedes it)

    @property
    def key(self) -> str:
        """KV_TIMERS key: one live timer per kind and ticket; re-arming overwrites it."""
        return f"{OWNER}.{self.kind}.{self.ticket_number}"

    @property
    def fire_id(self) -> str:
        """Nats-Msg-Id of the firing: the same timer firing twice publishes once."""
        return f"{self.key}@{self.due.isoformat()}#{self.step}"


decode_timer = msgspec.json.Decoder(Timer).decode


def warn_uses_business_time(*, business_clock: bool, tier: str, emergency: bool) -> bool:
    """A premium emergency runs on the wall clock even when the tier's target is in business time."""
    return business_clock and not (tier == "premium" and emergency)


def plan(
    ticket: Ticket,
    *,
    dispatched_at: datetime,
    ack_timeout: timedelta,
    warn_before: timedelta,
    business_subtract: Callable[[datetime, timedelta], datetime] | None = None,
) -> list[Timer]:
    """Timers a freshly dispatched ticket gets.

    ack at dispatched_at + ack_timeout; warn at due - warn_before (in business time when
    `business_subtract` is given); due at response_due. A warn that would fire at or before
    dispatch is dropped: the client was just told the time, "running late" would be noise.
    """
    due = ticket.response_due or ticket.decision.response_due
    timers = [
        Timer(
            kind="ack",
            ticket_number=ticket.number,
            due=dispatched_at + ack_timeout,
            step=ticket.escalation_step,
        )
    ]
    warn_at = business_subtract(due, warn_before) if business_subtract is not None else due - warn_before
    if dispatched_at < warn_at < due:
        timers.append(Timer(kind="warn", ticket_number=ticket.number, due=warn_at))
    timers.append(Timer(kind="due", ticket_number=ticket.number, due=due))
    return timers


def escalation_order(rotation: Sequence[str], original: str | None) -> list[str]:
    """Techs to try after the original assignee: the rotation, starting after them."""
    if original is not None and original in rotation:
        i = list(rotation).index(original)
        return [*rotation[i + 1 :], *rotation[:i]]
    return list(rotation)


class Escalate(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    tech: str | None  # None: every tech was tried, the desk ops contact takes it


class WarnLate(msgspec.Struct, frozen=True, kw_only=True):
    new_estimate: datetime


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    pass


class Nothing(msgspec.Struct, frozen=True, kw_only=True):
    why: str


Firing = Escalate | WarnLate | Breach | Nothing


def on_fire(timer: Timer, ticket: Ticket, *, rotation: Sequence[str], warn_before: timedelta) -> Firing:
    """What a timer firing means for the ticket as it is now (firing is idempotent by design)."""
    if ticket.status == "resolved":
        return Nothing(why="resolved")
    if timer.kind == "ack":
        if ticket.status != "dispatched":
            return Nothing(why=f"status {ticket.status}")
        if timer.step != ticket.escalation_step:
            return Nothing(why="superseded by a later escalation")
        order = escalation_order(rotation, ticket.decision.assignee)
        step = ticket.escalation_step
        if step < len(order):
            return Escalate(step=step + 1, tech=order[step])
        if step == len(order):
            return Escalate(step=step + 1, tech=None)
        return Nothing(why="ops already has it")
    due = ticket.response_due or ticket.decision.response_due
    if timer.kind == "warn":
        if ticket.status == "accepted" and (ticket.eta is None or ticket.eta <= due):
            return Nothing(why="accepted and on time")
        if ticket.eta is not None and ticket.eta > due:
            return WarnLate(new_estimate=ticket.eta)
        return WarnLate(new_estimate=due + warn_before)
    if ticket.status == "dispatched":
        return Breach()
    return Nothing(why="accepted before due")
