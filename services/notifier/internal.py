"""The notifier's own commands on fd.notify.* (a timer fired, an SMS could not be delivered) and its lanes."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.contracts.commands import (
    Command,
    DeskCommand,
    ReassignTicket,
    ResolveTicket,
    SendClientUpdate,
    SendEmail,
    SendSms,
)
from services.contracts.events import DeliveryFailed, OptOutChanged, SmsStatusReported, TechReplied
from services.notifier.timers import TimerKind

TIMER_FIRED = "timer"


class TimerFired(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str  # timer key + due: the Nats-Msg-Id, so a timer firing twice is stored once
    kind: TimerKind
    ticket_number: str
    due: datetime
    step: int = 0


NotifyCommand = Command | DeskCommand | TimerFired | DeliveryFailed


# Lanes for the notifier's consumers: messages sharing one run in arrival order, the rest overlap.
def ticket_lane(command: NotifyCommand) -> frozenset[str]:
    """Everything about one ticket (dispatch, acknowledgment, timers, failures) in order."""
    if isinstance(command, DeliveryFailed):
        number = command.message.ticket_number
        return frozenset({number}) if number else frozenset()
    if isinstance(command, (TimerFired, ReassignTicket, ResolveTicket, SendClientUpdate)):
        return frozenset({command.ticket_number})
    return frozenset({command.ticket.number})


def sender_lane(message: SendSms | SendEmail) -> frozenset[str]:
    """None: the sender keeps one recipient's requests to Twilio in order itself (outbound.Sender's
    turns), so their claims, settles and acks need not wait for each other."""
    return frozenset()


def phone_lane(event: TechReplied | OptOutChanged) -> frozenset[str]:
    """One phone's replies (or opt-outs) in order: ACK before DONE, STOP before START."""
    return frozenset({event.phone})


def report_lane(event: SmsStatusReported) -> frozenset[str]:
    """A status report in order with any other report on the message it reports."""
    return frozenset({event.key or event.message_sid})
