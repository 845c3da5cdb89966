"""Pure routing rules: emergency detection, summaries, our Message-IDs, record keys, timeline entries."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from services.contracts import RequestAmended, Sender, ServiceRequest, ThreadKeys
from services.router import routing

KEYWORDS = ("down", "outage", "urgent", "emergency", "offline", "not working")


def req(**kw: object) -> ServiceRequest:
    base = {
        "id": "r",
        "channel": "email",
        "received_at": datetime(2026, 11, 23, tzinfo=UTC),
        "sender": Sender(),
    }
    return ServiceRequest(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"subject": "Server DOWN"}, True),
        ({"body": "the VPN is not working since noon"}, True),
        ({"body": "download a file please"}, False),  # "down" only as a whole word
        ({"priority_hint": "emergency"}, True),
        ({"subject": "Question about invoices"}, False),
    ],
)
def test_is_emergency(fields: dict[str, object], expected: bool) -> None:
    assert routing.is_emergency(req(**fields), KEYWORDS) is expected


def test_summary_collapses_whitespace_and_truncates() -> None:
    assert routing.summary(req(body="  line one\n\n line two ")) == "line one line two"
    assert len(routing.summary(req(body="x" * 500))) == 160
    assert routing.summary(req(channel="voice")) == "voice request"


def test_referenced_ticket_needs_the_intake_verdict() -> None:
    ours = f"<SR-1042.n1.{'a' * 16}@frontdesk.test>"
    assert (
        routing.referenced_ticket(req(thread=ThreadKeys(references=(ours,), references_ours=True)))
        == "SR-1042"
    )
    assert routing.referenced_ticket(req(thread=ThreadKeys(references=(ours,)))) is None


def test_keys_are_kv_safe() -> None:
    assert routing.thread_key("<Abc+1@Mail.Example>") == "abc=2b=1=40=mail.example"
    assert routing.request_key("CA123:rec") == "request.CA123=3a=rec"
    assert routing.timer_key("SR-1001") == "router.release.SR-1001"


def test_lane_keys_tie_a_follow_up_to_its_original_and_leave_strangers_apart() -> None:
    at = datetime(2026, 11, 23, 16, tzinfo=UTC)
    original = ServiceRequest(
        id="a", channel="email", received_at=at, sender=Sender(email="x@acme.example"),
        thread=ThreadKeys(message_id="<M1@Acme.example>"),
    )  # fmt: skip
    follow_up = ServiceRequest(
        id="b", channel="email", received_at=at, sender=Sender(email="y@acme.example"),
        thread=ThreadKeys(in_reply_to=("<m1@acme.example>",)),
    )  # fmt: skip
    stranger = ServiceRequest(id="c", channel="sms", received_at=at, sender=Sender(phone="+13125550150"))
    token = msgspec.structs.replace(stranger, id="d", thread=ThreadKeys(ticket_token="SR-1001"))
    amended = RequestAmended(id="e", request_id="c", received_at=at, transcription="more")
    assert routing.lane_keys(original) & routing.lane_keys(follow_up)
    assert not routing.lane_keys(original) & routing.lane_keys(stranger)
    assert not routing.lane_keys(stranger) & routing.lane_keys(token)
    assert routing.lane_keys(amended) & routing.lane_keys(stranger)
    assert "ticket:SR-1001" in routing.lane_keys(token)


def test_request_entries_land_on_the_record_s_timeline_under_the_request_they_answer() -> None:
    record = routing.RequestRecord(outcome="ticket", client_id="acme", ticket_number="SR-1001")
    at = datetime(2026, 11, 23, 16, tzinfo=UTC)
    first = req(id="c")
    amended = RequestAmended(id="e", request_id="c", received_at=at, transcription="more")
    received = routing.request_entry("request_received", first, record, key="c", text="in")
    more = routing.request_entry("request_amended", amended, record, key=amended.id, text="more")
    assert received.id == "router:request_received:c" and received.at == first.received_at
    assert more.id == "router:request_amended:e" and more.at == at
    assert received.request_id == more.request_id == "c"  # the amendment is about request c
    where = {(e.client_id, e.ticket_number, e.service, e.actor) for e in (received, more)}
    assert where == {("acme", "SR-1001", "router", "system")}
