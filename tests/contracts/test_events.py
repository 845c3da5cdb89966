"""DeliveryFailed on the wire: it carries the SMS that failed, tagged, and refuses the shape it replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from services.contracts.commands import SendSms
from services.contracts.events import DeliveryFailed

AT = datetime(2026, 12, 1, 18, 5, tzinfo=UTC)
DISPATCH = SendSms(
    key="dispatch.T-1.tech-a",
    to="+15551230001",
    body="Ticket T-1",
    purpose="tech_dispatch",
    created_at=datetime(2026, 12, 1, 18, 0, tzinfo=UTC),
    client_id="acme",
    ticket_number="T-1",
)
FAILED = DeliveryFailed(id="failed.dispatch.T-1.tech-a", message=DISPATCH, error_code=30003, at=AT)
# What the notifier published before the event carried its message: one still in the stream at an
# upgrade is dead-lettered (the tech's ack timer escalates instead, as it would have without the event).
OLD_SHAPE = (
    b'{"type":"DeliveryFailed","id":"failed.k","key":"k","to":"+15551230001","purpose":"tech_dispatch",'
    b'"error_code":30003,"at":"2026-12-01T18:05:00Z","ticket_number":"T-1","client_id":"acme"}'
)


def test_the_failed_sms_travels_whole_with_its_own_tag() -> None:
    written = msgspec.json.decode(msgspec.json.encode(FAILED))
    assert written["type"] == "DeliveryFailed"
    assert written["message"] == msgspec.json.decode(msgspec.json.encode(DISPATCH))
    assert written["message"]["type"] == "SendSms"
    assert msgspec.json.decode(msgspec.json.encode(FAILED), type=DeliveryFailed) == FAILED
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(FAILED), type=DeliveryFailed) == FAILED


def test_the_shape_it_replaced_is_refused_naming_the_message() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `message`"):
        msgspec.json.decode(OLD_SHAPE, type=DeliveryFailed)
