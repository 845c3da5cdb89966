"""The notifier's own commands on fd.notify.*: a timer fired, an outbound SMS could not be delivered."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.contracts.commands import Command, Purpose
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


NotifyCommand = Command | TimerFired | DeliveryFailed
