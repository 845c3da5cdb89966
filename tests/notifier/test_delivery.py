"""What happens after Twilio answered (or did not): status callbacks, lost responses, crashed sends."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus, KvEntry
from services.common.config import BusConfig
from services.contracts import AcknowledgeClient, Sender, SendSms, SmsStatusReported, Ticket
from services.contracts import subjects as s
from services.notifier import outbound
from services.notifier.delivery import DeliveryRecord
from services.notifier.outbound import LostClaim
from tests.notifier.stack import ALICE, BOB, CAROL, JANE, NOW, Stack, dispatch, make_ticket, running, timeline


@pytest.fixture
async def shared(bus: Bus, bus_config: BusConfig) -> AsyncIterator[Stack]:
    """Twilio's clock is ours here, so reconciliation compares like with like."""
    async with running(bus, bus_config, sandbox_clock=True, reconcile_after=0.3) as started:
        yield started


async def record(stack: Stack, key: str) -> DeliveryRecord | None:
    value, _ = await stack.bus.kv_get(s.KV_OUTBOUND, f"out.{key}")
    return msgspec.json.decode(value, type=DeliveryRecord) if value else None


async def report(stack: Stack, key: str, sid: str, status: Any, code: int | None = None) -> None:
    """What intake_voice publishes when Twilio calls /twilio/sms/status."""
    event = SmsStatusReported(
        id=f"{sid}.{status}",
        message_sid=sid,
        status=status,
        to="",
        reported_at=stack.clock.now(),
        key=key,
        error_code=code,
    )
    await stack.bus.publish(s.SMS_STATUS_REPORTED, event, msg_id=event.id)


async def test_carrier_failure_reported_later_falls_back_to_email_once(stack: Stack) -> None:
    command = AcknowledgeClient(id="ack-1", ticket=make_ticket(channel="sms"), request_id="req-1")
    await stack.bus.publish(s.notify_subject("ack"), command, msg_id=command.id)
    await stack.until(lambda: len(stack.sms(JANE)) == 1)
    sid = stack.sms(JANE)[0]["sid"]
    await stack.settled()  # the sender has recorded the send
    # Twilio took it (201), then the carrier could not reach the handset: undelivered, 30003.
    await report(stack, "ack.ack-1", sid, "undelivered", 30003)
    await report(stack, "ack.ack-1", sid, "failed", 30003)  # a second final report changes nothing
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    await stack.settled()
    assert "as ticket SR-1042" in stack.emails("jane@acme.example")[0]["body"]
    assert len(stack.sms()) == 1 and len(stack.emails("jane@acme.example")) == 1
    stored = await record(stack, "ack.ack-1")
    assert stored is not None and (stored.state, stored.sid) == ("failed", sid)
    assert stored.error.startswith("30003")
    failures = [e.text for e in await timeline(stack) if e.kind == "message_failed"]
    assert failures == [f"sms to {JANE} failed permanently (30003)"]


async def test_carrier_failure_on_a_tech_escalates_to_the_next(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    await report(stack, "dispatch.cmd-1", stack.sms(ALICE)[0]["sid"], "undelivered", 30003)
    await stack.until(lambda: len(stack.sms(BOB)) == 1)
    await stack.settled()
    assert "(escalated)" in stack.sms(BOB)[0]["body"]
    assert len(stack.sms()) == 2 and stack.sandbox.ledger.emails == []


async def test_delivered_report_is_recorded_and_a_stranger_sid_ignored(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    sid = stack.sms(ALICE)[0]["sid"]
    await report(stack, "dispatch.cmd-1", "SM-not-ours", "undelivered", 30003)
    await report(stack, "dispatch.cmd-1", sid, "delivered")
    await stack.settled()
    stored = await record(stack, "dispatch.cmd-1")
    assert stored is not None and (stored.state, stored.sid) == ("delivered", sid)
    assert len(stack.sms()) == 1  # nobody escalated on a report about another message


async def test_lost_response_after_twilio_accepted_sends_one_sms(shared: Stack) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{shared.sandbox.url}/api/faults", json={"lost_responses": 1})
    await dispatch(shared, make_ticket())
    await shared.until(lambda: len(shared.sms(ALICE)) == 1)
    await shared.settled()
    assert len(shared.sms()) == 1
    stored = await record(shared, "dispatch.cmd-1")
    assert stored is not None and (stored.state, stored.sid) == ("sent", shared.sms(ALICE)[0]["sid"])


def ops_alert(stack: Stack, key: str, body: str) -> SendSms:
    """An alert to Carol (ops), created now: no fallback, no ticket, no rate window in the way."""
    return SendSms(key=key, to=CAROL, body=body, purpose="ops_alert", created_at=stack.clock.now())


async def crashed_mid_send(stack: Stack, sms: SendSms, *, claimed: float) -> None:
    """The KV state a sender leaves when it dies between claiming a message and recording the send."""
    left = DeliveryRecord(state="sending", at=stack.clock.now(), channel="sms", claimed=claimed, message=sms)
    kv = await stack.bus.kv(s.KV_OUTBOUND)
    await kv.put(f"out.{sms.key}", msgspec.json.encode(left))


async def sent_at_twilio(stack: Stack, to: str, body: str) -> str:
    """An SMS created at Twilio through the real SDK, as a sender that died before recording it would have."""
    tw = stack.cfg.twilio
    http_client = AsyncTwilioHttpClient()
    twilio = TwilioClient(tw.account_sid, tw.auth_token.reveal(), http_client=http_client)
    twilio.api.base_url = stack.sandbox.url
    try:
        created = await twilio.messages.create_async(to=to, from_=tw.from_, body=body)
    finally:
        await http_client.close()
    return str(created.sid)


async def test_crash_after_twilio_accepted_is_reconciled_not_resent(shared: Stack) -> None:
    sms = ops_alert(shared, "ops.late.1", "SR-1042 running late")
    await crashed_mid_send(shared, sms, claimed=time.time() - 60)
    # The dead sender's request had reached Twilio.
    first = await sent_at_twilio(shared, CAROL, sms.body)
    # JetStream redelivers the unacked command after the restart.
    await shared.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await shared.until(lambda: shared.sms(CAROL) != [])
    await shared.settled()
    stored = await record(shared, sms.key)
    assert stored is not None and (stored.state, stored.sid) == ("sent", first)
    assert [m["sid"] for m in shared.sms()] == [first]


async def test_crash_before_twilio_is_sent_once_after_the_in_flight_window(shared: Stack) -> None:
    sms = ops_alert(shared, "ops.late.2", "SR-1043 running late")
    # Claimed just now: the first delivery must wait, since that request could still be in flight.
    await crashed_mid_send(shared, sms, claimed=time.time())
    await shared.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await shared.until(lambda: len(shared.sms(CAROL)) == 1)
    await shared.settled()
    assert [m["body"] for m in shared.sms()] == ["SR-1043 running late"]
    stored = await record(shared, sms.key)
    assert stored is not None and stored.state == "sent"


async def test_older_identical_text_is_not_mistaken_for_the_lost_one(shared: Stack) -> None:
    sms = ops_alert(shared, "ops.late.3", "same words")
    await sent_at_twilio(shared, CAROL, "same words")
    shared.clock.advance(timedelta(hours=1))  # that one was an hour before this send began
    await crashed_mid_send(shared, sms, claimed=time.time() - 60)
    await shared.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await shared.until(lambda: len(shared.sms(CAROL)) == 2)
    await shared.settled()
    assert len(shared.sms()) == 2


async def acknowledge(stack: Stack, ticket: Ticket, command_id: str = "ack-9") -> None:
    command = AcknowledgeClient(id=command_id, ticket=ticket, request_id=ticket.request_id)
    await stack.bus.publish(s.notify_subject("ack"), command, msg_id=command.id)


async def test_caller_who_prefers_email_is_answered_by_email(stack: Stack) -> None:
    # Peter (Initech) set `preferred: email` in the policy; he called, so the request has only his number.
    peter = msgspec.structs.replace(
        make_ticket(channel="voice"),
        client_id="initech",
        contact=Sender(phone="+442079460123", name="Peter Gibbons"),
    )
    await acknowledge(stack, peter)
    await stack.until(lambda: len(stack.emails("peter@initech.example")) == 1)
    await stack.settled()
    assert stack.sms() == [] and "as ticket SR-1042" in stack.emails("peter@initech.example")[0]["body"]


async def test_caller_dead_number_falls_back_to_the_directory_email(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{stack.sandbox.url}/api/faults", json={"number": JANE, "error_code": 21614})
    # Jane prefers SMS and called: the reply goes by SMS, and her email comes from the directory.
    jane = msgspec.structs.replace(make_ticket(channel="voice"), contact=Sender(phone=JANE, name="Jane Roe"))
    await acknowledge(stack, jane)
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    await stack.settled()
    assert stack.sms() == []


def left(sms: SendSms, state: Any, **fields: Any) -> DeliveryRecord:
    return DeliveryRecord(state=state, at=sms.created_at, channel="sms", message=sms, **fields)


async def put_record(stack: Stack, key: str, record: DeliveryRecord) -> None:
    kv = await stack.bus.kv(s.KV_OUTBOUND)
    await kv.put(f"out.{key}", msgspec.json.encode(record))


def client_sms(stack: Stack, key: str) -> SendSms:
    return SendSms(
        key=key,
        to=JANE,
        body=f"{key}: we are on it",
        purpose="client_update",
        created_at=stack.clock.now(),
        client_id="acme",
        ticket_number="SR-1042",
        fallback_email="jane@acme.example",
    )


async def test_carrier_failure_reported_between_retries_still_falls_back(stack: Stack) -> None:
    # A 5xx after Twilio created the message leaves "retry"; the carrier's verdict arrives before
    # the next delivery and must not be dropped.
    sms = client_sms(stack, "upd.1")
    await put_record(stack, sms.key, left(sms, "retry", unsure=True))
    await report(stack, sms.key, "SM-created-before-the-500", "undelivered", 30003)
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    # The redelivered command then finds the record failed: nothing is texted.
    await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await stack.settled()
    assert stack.sms() == [] and len(stack.emails("jane@acme.example")) == 1


async def test_crash_between_failure_and_fallback_falls_back_on_redelivery(stack: Stack) -> None:
    sms = client_sms(stack, "upd.2")
    # Recorded as failed, then the process died before the fallback email was published.
    await put_record(stack, sms.key, left(sms, "failed", error="unreachable", error_code=30003))
    await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered-again")  # and once more: still one
    await stack.settled()
    assert stack.sms() == [] and len(stack.emails("jane@acme.example")) == 1


async def test_reconciliation_that_finds_an_undelivered_text_falls_back(shared: Stack) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{shared.sandbox.url}/api/faults", json={"number": JANE, "error_code": 30003})
    sms = client_sms(shared, "upd.3")
    await crashed_mid_send(shared, sms, claimed=time.time() - 60)
    # The dead sender's request reached Twilio, and the carrier could not deliver it.
    await sent_at_twilio(shared, JANE, sms.body)
    await shared.bus.publish(s.OUTBOX_SMS, sms, msg_id="redelivered")
    await shared.until(lambda: len(shared.emails("jane@acme.example")) == 1)
    await shared.settled()
    assert len(shared.sms()) == 1  # the undelivered one only; no second try at a dead handset
    stored = await record(shared, sms.key)
    assert stored is not None and (stored.state, stored.error_code) == ("failed", 30003)


async def test_a_sender_whose_claim_was_taken_over_stops(stack: Stack) -> None:
    sms = client_sms(stack, "upd.4")
    await put_record(stack, sms.key, left(sms, "sending", claim="someone-else", claimed=time.time()))
    sender = outbound.Sender(stack.bus, stack.cfg, stack.clock, TwilioClient("AC0", "unused"))
    job = outbound.Job(message=sms, key=f"out.{sms.key}", channel="sms", claim="mine", first_at=NOW)
    # Each remembers the record as new (a stale revision): the renewal re-reads and decides on it.
    mine = outbound.Held(sender, job, KvEntry(None, 0))
    mine.fresh = False
    with pytest.raises(LostClaim):
        await mine.before_request()
    holder = outbound.Held(sender, dataclasses.replace(job, claim="someone-else"), KvEntry(None, 0))
    holder.fresh = False
    await holder.before_request()  # the holder renews without trouble
    renewed = await record(stack, sms.key)
    assert renewed is not None and renewed.claim == "someone-else" and holder.entry.written
