"""The outbound commands on the wire: SendSms and SendEmail keep their tags, fields and values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from services.contracts.commands import SendEmail, SendSms

AT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)

# Encoded by the definitions before SendSms and SendEmail shared their envelope: what a stream may still
# hold, and what any reader of the outbox already expects.
SMS_JSON = (
    b'{"type":"SendSms","key":"dispatch.T-1.tech-a","to":"+15551230001","body":"Ticket T-1",'
    b'"purpose":"tech_dispatch","created_at":"2026-12-01T18:00:00Z","client_id":"acme",'
    b'"ticket_number":"T-1","fallback_email":"a@tech.test"}'
)
BARE_SMS_JSON = (
    b'{"type":"SendSms","key":"k","to":"+1555","body":"b","purpose":"ops_alert",'
    b'"created_at":"2026-12-01T18:00:00Z","client_id":null,"ticket_number":null,"fallback_email":null}'
)
EMAIL_JSON = (
    b'{"type":"SendEmail","key":"ack.req-1","to":"c@client.test","subject":"Re: heat","body":"We have it",'
    b'"purpose":"client_ack","created_at":"2026-12-01T18:00:00Z","client_id":"acme","ticket_number":"T-1",'
    b'"in_reply_to":"<m1@client.test>","references":["<m0@client.test>","<m1@client.test>"]}'
)
BARE_SMS = SendSms(key="k", to="+1555", body="b", purpose="ops_alert", created_at=AT)
RECORDED = [SMS_JSON, BARE_SMS_JSON, EMAIL_JSON]
IDS = ["sms", "bare-sms", "email"]
outgoing = msgspec.json.Decoder(SendSms | SendEmail)


@pytest.mark.parametrize("recorded", RECORDED, ids=IDS)
def test_json_round_trips_with_the_same_tag_fields_and_values(recorded: bytes) -> None:
    command = outgoing.decode(recorded)
    assert type(command).__name__ == msgspec.json.decode(recorded)["type"]
    written: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(command))
    assert written == msgspec.json.decode(recorded)
    assert outgoing.decode(msgspec.json.encode(command)) == command


@pytest.mark.parametrize("recorded", RECORDED, ids=IDS)
def test_msgpack_round_trips_with_the_same_fields(recorded: bytes) -> None:
    command = outgoing.decode(recorded)
    packed = msgspec.msgpack.encode(command)
    fields: dict[str, Any] = msgspec.msgpack.decode(packed)
    assert fields.keys() == msgspec.json.decode(recorded).keys()
    assert msgspec.msgpack.decode(packed, type=SendSms | SendEmail) == command


def test_fields_land_where_they_were() -> None:
    sms, mail = outgoing.decode(SMS_JSON), outgoing.decode(EMAIL_JSON)
    assert isinstance(sms, SendSms) and isinstance(mail, SendEmail)
    assert (sms.key, sms.to, sms.purpose, sms.created_at, sms.fallback_email) == (
        "dispatch.T-1.tech-a",
        "+15551230001",
        "tech_dispatch",
        AT,
        "a@tech.test",
    )
    assert (mail.subject, mail.body, mail.client_id, mail.ticket_number, mail.references) == (
        "Re: heat",
        "We have it",
        "acme",
        "T-1",
        ("<m0@client.test>", "<m1@client.test>"),
    )


def test_sms_bytes_are_unchanged() -> None:
    """SendSms's fields keep their order, so its encoding is the same to the byte."""
    assert msgspec.json.encode(outgoing.decode(SMS_JSON)) == SMS_JSON
    assert msgspec.json.encode(BARE_SMS) == BARE_SMS_JSON


def test_a_missing_required_field_is_named() -> None:
    broken = EMAIL_JSON.replace(b'"to":"c@client.test",', b"")
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `to`"):
        outgoing.decode(broken)
