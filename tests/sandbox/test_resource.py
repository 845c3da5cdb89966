"""Twilio-shaped resources: SIDs, message JSON, error bodies, segment counting."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from services.sandbox import resource


def test_message_resource_has_twilio_shape() -> None:
    sid = resource.sid("SM")
    body = resource.message(
        account_sid="AC1",
        message_sid=sid,
        to="+15005550006",
        from_="+13125550100",
        body="hello",
        status="queued",
        created=datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        messaging_service_sid=None,
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    assert body["date_created"] == "Mon, 23 Nov 2026 14:00:00 +0000"
    assert body["uri"] == f"/2010-04-01/Accounts/AC1/Messages/{sid}.json"
    assert body["price"] is None and body["error_code"] is None
    assert body["num_segments"] == "1"


def test_error_body_names_the_number() -> None:
    assert resource.error(21211, 400, to="+1555") == {
        "code": 21211,
        "message": "The 'To' number +1555 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }


def test_segments_follow_gsm_and_ucs2_limits() -> None:
    assert resource.segments("a" * 160) == 1
    assert resource.segments("a" * 161) == 2
    assert resource.segments("é" * 70) == 1  # non-ASCII treated as UCS-2
    assert resource.segments("é" * 71) == 2
