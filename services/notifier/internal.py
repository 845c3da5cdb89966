"""The notifier's own commands on fd.notify.* (a timer fired, an SMS could not be delivered) and its lanes."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.contracts.commands import (
    Command,
    DeskCommand,
    Purpose,
    ReassignTicket,
    ResolveTicket,
    SendClientUpdate,
    SendEmail,
    SendSms,
)
from services.contracts.events import OptOutChanged, SmsStatusReported, TechReplied
from services.notifier.timers import TimerKind

TIMER_FIRED = "timer"
DELIVERY_FAILED = "delivery_failed"


class TimerFired(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str  # timer key + due: the Nats-Msg-Id, so a timer firing twice is stored once
    kind: TimerKind
    ticket_number: str
    due: datetime
    step: int = 0


class DeliveryFailed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str
    key: str  # idempotency key of the SMS that failed
    to: str
    purpose: Purpose
    error_code: int
    at: datetime
    ticket_number: str | None = None
    client_id: str | None = None


NotifyCommand = Command | DeskCommand | TimerFired | DeliveryFailed


# Lanes for the notifier's consumers: messages sharing one run in arrival order, the rest overlap.
def ticket_lane(command: NotifyCommand) -> frozenset[str]:
    """Everything about one ticket (dispatch, acknowledgment, timers, failures) in order."""
    if isinstance(command, (TimerFired, DeliveryFailed)):
        return frozenset({command.ticket_number}) if command.ticket_number else frozenset()
    if isinstance(command, (ReassignTicket, ResolveTicket, SendClientUpdate)):
        return frozenset({command.ticket_number})
    return frozenset({command.ticket.number})


def recipient_lane(message: SendSms | SendEmail) -> frozenset[str]:
    """One recipient's messages in order (an acknowledgment before the update that follows it)."""
    return frozenset({message.to.lower()})


def sender_lane(event: TechReplied | OptOutChanged | SmsStatusReported) -> frozenset[str]:
    """One phone's replies in order (ACK before DONE); a status report with the message it reports."""
    if isinstance(event, SmsStatusReported):
        return frozenset({event.key or event.message_sid})
    return frozenset({event.phone})
