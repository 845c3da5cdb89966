"""The delivery state machine's pure transitions: claim, renew, release, settle and status reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.contracts import SendSms, SmsStatusReported
from services.notifier import delivery as d

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
SMS = SendSms(key="k1", to="+15550100", body="hi", purpose="client_ack", created_at=NOW)


def held(state: d.State, **fields: Any) -> d.DeliveryRecord:
    return d.DeliveryRecord(state=state, at=NOW - timedelta(minutes=1), channel="sms", message=SMS, **fields)


def claim(
    current: d.DeliveryRecord | None, wall: float = 1000.0
) -> tuple[d.DeliveryRecord | None, d.Claimed]:
    return d.claim(current, SMS, now=NOW, wall=wall, mine="me", reconcile_after=20.0)


def test_a_new_message_is_claimed_by_us() -> None:
    record, claimed = claim(None)
    assert claimed.outcome == "new" and claimed.first_at == NOW
    assert record is not None and (record.state, record.claim, record.claimed) == ("sending", "me", 1000.0)


def test_a_live_claim_is_left_alone_and_a_stale_one_is_reconciled() -> None:
    live = held("sending", claim="other", claimed=990.0)
    assert claim(live) == (None, d.Claimed(outcome="busy", first_at=NOW, previous=live))
    record, claimed = claim(held("sending", claim="other", claimed=900.0))
    assert claimed.outcome == "reconcile" and claimed.first_at == NOW - timedelta(minutes=1)
    assert record is not None and record.claim == "me"


def test_retry_sends_again_or_asks_first_and_finished_ones_are_never_sent_again() -> None:
    assert claim(held("retry"))[1].outcome == "again"
    assert claim(held("retry", unsure=True))[1].outcome == "reconcile"
    assert claim(held("failed"))[1].outcome == "refail"
    finished: tuple[d.State, ...] = ("sent", "delivered", "suppressed")
    for state in finished:
        assert claim(held(state)) == (None, d.Claimed(outcome="done", first_at=NOW, previous=held(state)))


def test_renew_keeps_our_claim_and_reports_a_lost_one() -> None:
    ours = held("sending", claim="me", claimed=1.0)
    record, kept = d.renew(ours, "me", 5.0)
    assert kept and record is not None and record.claimed == 5.0
    assert d.renew(held("sending", claim="other"), "me", 5.0) == (None, False)
    assert d.renew(None, "me", 5.0) == (None, False)


def test_release_and_settle_only_over_our_own_claim() -> None:
    ours = held("sending", claim="me")
    record, _ = d.release(ours, SMS, mine="me", first_at=NOW, error="503", unsure=True, wall=7.0)
    assert record is not None and (record.state, record.unsure, record.error) == ("retry", True, "503")
    assert (
        d.release(
            held("sending", claim="other"), SMS, mine="me", first_at=NOW, error="", unsure=False, wall=7.0
        )[0]
        is None
    )
    # A record gone meanwhile is handed back all the same, as our claim's would have been.
    claimed, _ = claim(None, wall=7.0)
    vanished, _ = d.release(None, SMS, mine="me", first_at=NOW, error="503", unsure=True, wall=7.0)
    assert vanished == d.release(claimed, SMS, mine="me", first_at=NOW, error="503", unsure=True, wall=7.0)[0]
    assert vanished is not None and (vanished.state, vanished.claim, vanished.unsure) == ("retry", "", True)
    sent, _ = d.settle(ours, "sms", "SM1", attempts=2, now=NOW)
    assert sent is not None and (sent.state, sent.sid, sent.message) == ("sent", "SM1", SMS)
    assert d.settle(held("delivered"), "sms", "SM1", attempts=1, now=NOW) == (None, None)


def report(
    status: Literal["delivered", "undelivered", "failed"], sid: str = "SM1", code: int | None = None
) -> SmsStatusReported:
    return SmsStatusReported(
        id="r", message_sid=sid, status=status, to=SMS.to, reported_at=NOW, key="k1", error_code=code
    )


def test_reports_deliver_fail_or_are_ignored() -> None:
    sent = held("sent", sid="SM1")
    delivered, failed = d.report(sent, report("delivered"))
    assert delivered is not None and delivered.state == "delivered" and failed is None
    assert d.report(sent, report("delivered", sid="SM9")) == (None, None)  # some other message
    record, failed = d.report(sent, report("undelivered", code=30003))
    assert record is not None and (record.state, record.error_code) == ("failed", 30003)
    assert failed == sent  # its fallback runs
    already = held("failed", sid="SM1")
    assert d.report(already, report("failed")) == (None, already)  # reported again: fallback again
    assert d.report(None, report("failed")) == (None, None)
