"""The notifier end to end: real nats-server, the in-process Twilio/SMTP sandbox, a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from nats.js.api import AckPolicy, ConsumerConfig

from services.common.bus import Bus
from services.common.config import BusConfig
from services.contracts import (
    AcknowledgeClient,
    OptOutChanged,
    RelayClientMessage,
    SendSms,
    SmsStatusReported,
    threading,
)
from services.contracts import subjects as s
from services.contracts.threading import SubjectToken
from services.notifier.app import Notifier
from services.policy.load import load_policy
from tests.notifier.stack import (
    ALICE,
    BOB,
    CAROL,
    JANE,
    NOW,
    OPS,
    Stack,
    dispatch,
    make_ticket,
    reply,
    running,
    stored,
    timeline,
)
from tests.support import until


async def test_the_notifier_makes_exactly_the_durables_its_grants_and_tests_name(stack: Stack) -> None:
    # natsauth grants, the e2e and notifier test stacks all read subjects.NOTIFIER_DURABLES; the notifier
    # pairs each durable with its handler by name, so a renamed one must fail here, not in production.
    streams = {stream for stream, _ in s.NOTIFIER_DURABLES}

    async def made() -> set[tuple[str, str]]:
        infos = [(stream, info) for stream in streams for info in await stack.bus.js.consumers_info(stream)]
        return {(stream, info.name) for stream, info in infos if info.name.startswith("notifier")}

    async def all_made() -> bool:
        return await made() == set(s.NOTIFIER_DURABLES)

    # The consumers are made as the notifier starts its loops, moments after main() began.
    await until(all_made, timeout=5.0, what="the notifier's durables made")
    assert await made() == set(s.NOTIFIER_DURABLES)


async def test_dispatch_texts_the_tech_once_even_when_redelivered(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    body = stack.sms(ALICE)[0]["body"]
    assert body.startswith("SR-1042 Acme Manufacturing (premium)")
    assert "Due: Mon Nov 23, 1:00 PM CST" in body and "Reply A to accept" in body
    assert "MES server is critical" in body  # the client's notes
    # The same command again under a new Nats-Msg-Id, as after a crash before the ack.
    await dispatch(stack, make_ticket(), msg_id="cmd-1-again")
    await stack.settled()
    assert len(stack.sms()) == 1
    ticket = await stored(stack, "SR-1042")
    assert (ticket.status, ticket.assignee) == ("dispatched", "alice")


async def test_ack_stops_escalation_and_tells_the_client(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await reply(stack, "SM-ack", ALICE, "accept")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    mail = stack.emails("jane@acme.example")[0]
    assert "Alice Nguyen is now working on your request" in mail["body"]
    assert "[SR-1042-" in mail["subject"]
    assert mail["headers"]["Auto-Submitted"] == "auto-replied"
    assert threading.verify_message_id(mail["headers"]["Message-ID"], b"test-secret") == "SR-1042"
    assert threading.find_subject_token(mail["subject"], b"test-secret") == SubjectToken(
        "SR-1042", True, False
    )
    stack.clock.advance(timedelta(minutes=11))
    await stack.timers_fired("SR-1042", "ack")
    await stack.settled()
    # Only the dispatch and alice's confirmation: nobody else was paged.
    assert [m["body"] for m in stack.sms()][1:] == ["SR-1042 accepted; Jane Roe was told."]
    assert (await stored(stack, "SR-1042")).status == "accepted"


async def test_no_ack_escalates_to_the_next_tech(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    stack.clock.advance(timedelta(minutes=11))
    await stack.until(lambda: len(stack.sms(BOB)) == 1)
    assert "(escalated)" in stack.sms(BOB)[0]["body"]
    await stack.settled()
    assert len(stack.sms()) == 2
    ticket = await stored(stack, "SR-1042")
    assert (ticket.assignee, ticket.escalation_step) == ("bob", 1)
    # Bob accepts: the next ack timeout passes quietly.
    await reply(stack, "SM-bob", BOB, "accept")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    stack.clock.advance(timedelta(minutes=11))
    await stack.timers_fired("SR-1042", "ack")
    await stack.settled()
    assert len(stack.sms()) == 3  # alice's dispatch, bob's escalation, bob's confirmation
    assert stack.sms(BOB)[-1]["body"] == "SR-1042 accepted; Jane Roe was told."


async def test_delay_reaches_the_client(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await reply(stack, "SM-delay", ALICE, "delay", minutes=30, reason="parts on the way")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    body = stack.emails("jane@acme.example")[0]["body"]
    assert "running late on your request SR-1042; the new estimate is today by 1:30 PM" in body
    assert "parts on the way" in body
    await stack.settled()
    assert [m["body"] for m in stack.sms()][1:] == ["SR-1042 delayed to 1:30 PM; Jane Roe was told."]
    assert (await stored(stack, "SR-1042")).response_due == NOW + timedelta(hours=4, minutes=30)


async def test_429_burst_is_retried_and_delivered_once(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{stack.sandbox.url}/api/faults", json={"burst": [429, 500, 429]})
        assert answer.status_code == 200
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    assert len(stack.sms()) == 1
    assert not stack.sandbox.ledger.burst  # all three refusals were consumed by retries


async def test_21614_falls_back_to_email_for_a_client(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{stack.sandbox.url}/api/faults", json={"number": JANE, "error_code": 21614}
        )
        assert answer.status_code == 200
    command = AcknowledgeClient(id="ack-1", ticket=make_ticket(channel="sms"), request_id="req-1")
    await stack.bus.publish(s.notify_subject("ack"), command, msg_id=command.id)
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert "as ticket SR-1042" in stack.emails("jane@acme.example")[0]["body"]
    await stack.settled()
    assert stack.sms() == []
    kinds = [entry.kind for entry in await timeline(stack)]
    assert "message_failed" in kinds and "ack_sent" in kinds


async def test_21614_on_a_tech_escalates_at_once(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{stack.sandbox.url}/api/faults", json={"number": ALICE, "error_code": 21614})
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(BOB)) == 1)
    await stack.settled()
    assert len(stack.sms()) == 1  # alice's was refused, bob's delivered


def paged(stack: Stack, phone: str) -> Callable[[], bool]:
    return lambda: len(stack.sms(phone)) == 1


async def test_missed_target_tells_client_and_ops(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    # Let the escalations run out (bob, carol, ops), then pass the warn time and the target.
    for who in (BOB, CAROL, OPS):
        stack.clock.advance(timedelta(minutes=11))
        await stack.until(paged(stack, who))
    stack.clock.set(NOW + timedelta(hours=3, minutes=46))
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert (
        "running late on your request SR-1042; the new estimate is today by 1:15 PM"
        in (stack.emails("jane@acme.example")[0]["body"])
    )
    stack.clock.set(NOW + timedelta(hours=4))
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 2)
    missed = stack.emails("jane@acme.example")[1]["body"]
    assert "missed our promise to respond to your request SR-1042 today by 1:00 PM" in missed
    await stack.settled()
    ops = [m["body"] for m in stack.sms(OPS)]
    assert len(ops) == 3  # escalation, running late, missed
    assert ops[2].startswith("OPS SR-1042") and "missed" in ops[2]
    kinds = [entry.kind for entry in await timeline(stack)]
    assert kinds.count("escalated") == 3 and "breached" in kinds
    assert len(stack.sms()) == 6


async def test_done_resolves_and_help_is_bounded(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    for n in range(7):
        await reply(stack, f"SM-what-{n}", ALICE, "unknown", text="huh?")
    await stack.until(lambda: len(stack.sms(ALICE)) == 6)
    await stack.settled()
    assert len(stack.sms(ALICE)) == 6  # the dispatch plus at most five help texts
    # The help counter lives in the expiring bucket; fd_contacts keeps only what must last (opt-outs).
    help_key = s.kv_key(f"help.{ALICE}")
    assert (await stack.bus.kv_get(s.KV_WINDOWS, help_key))[0] is not None
    assert (await stack.bus.kv_get(s.KV_CONTACTS, help_key))[0] is None
    await reply(stack, "SM-done", ALICE, "done")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert "has marked your request SR-1042 resolved" in stack.emails("jane@acme.example")[0]["body"]
    ticket = await stored(stack, "SR-1042")
    assert ticket.status == "resolved" and ticket.resolved_at == NOW
    stack.clock.set(NOW + timedelta(hours=5))
    await stack.timers_fired("SR-1042", "due")
    await stack.settled()
    assert stack.sms()[-1]["body"] == "SR-1042 resolved; Jane Roe was told."
    assert len(stack.sms()) == 7 and len(stack.emails("jane@acme.example")) == 1


async def test_same_outbound_key_sends_one_sms(stack: Stack) -> None:
    sms = SendSms(key="timer.fired.twice", to=CAROL, body="hello", purpose="ops_alert", created_at=NOW)
    await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id="first")
    await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id="second")  # past JetStream de-duplication
    await stack.until(lambda: len(stack.sms(CAROL)) == 1)
    await stack.settled()
    assert len(stack.sms()) == 1
    record, _ = await stack.bus.kv_get(s.KV_OUTBOUND, "out.timer.fired.twice")
    assert record is not None and b'"sent"' in record


async def test_opted_out_client_gets_email_instead(stack: Stack) -> None:
    event = OptOutChanged(id="SM-stop", phone=JANE, opted_out=True, received_at=NOW, keyword="STOP")
    await stack.bus.publish(s.OPT_OUT_CHANGED, event, msg_id=event.id)
    await stack.settled()
    command = AcknowledgeClient(id="ack-2", ticket=make_ticket(channel="voice"), request_id="req-1")
    await stack.bus.publish(s.notify_subject("ack"), command, msg_id=command.id)
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    await stack.settled()
    assert stack.sms() == []


async def test_timers_survive_a_restart(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    await stack.halt()
    stack.clock.advance(timedelta(minutes=11))  # the ack timeout passes while the notifier is down
    await asyncio.sleep(0.2)
    assert stack.sms(BOB) == []
    stack.start()
    await stack.until(lambda: len(stack.sms(BOB)) == 1)
    await stack.settled()
    assert len(stack.sms()) == 2


async def test_at_most_ten_system_messages_per_recipient_per_ten_minutes(stack: Stack) -> None:
    for n in range(12):
        sms = SendSms(key=f"upd-{n}", to=JANE, body=f"update {n}", purpose="client_update", created_at=NOW)
        await stack.bus.publish(s.OUTBOX_SMS, sms, msg_id=sms.key)
    await stack.until(lambda: len(stack.sms(JANE)) == 10)
    await stack.settled()
    assert len(stack.sms(JANE)) == 10
    suppressed, _ = await stack.bus.kv_get(s.KV_OUTBOUND, "out.upd-11")
    assert suppressed is not None and b'"suppressed"' in suppressed
    stack.clock.advance(timedelta(minutes=10))
    late = SendSms(key="upd-late", to=JANE, body="later", purpose="client_update", created_at=NOW)
    await stack.bus.publish(s.OUTBOX_SMS, late, msg_id=late.key)
    await stack.until(lambda: len(stack.sms(JANE)) == 11)


async def test_next_dispatch_quotes_the_last_finished_job(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    assert "Last:" not in stack.sms(ALICE)[0]["body"]  # nothing finished for Acme yet
    await reply(stack, "SM-done-1", ALICE, "done")
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    await dispatch(stack, make_ticket("SR-1043"), command_id="cmd-2")
    await stack.until(lambda: len(stack.sms(ALICE)) == 3)  # dispatch, DONE confirmation, dispatch
    assert (
        'Last: Alice Nguyen resolved SR-1042 "MES server slow" on Mon Nov 23' in stack.sms(ALICE)[2]["body"]
    )
    await stack.settled()
    assert len(stack.sms()) == 3


async def test_business_clock_warning_lands_inside_business_hours(stack: Stack) -> None:
    # Due Tuesday 08:10 Chicago on a business clock (premium, normal priority). Fifteen business
    # minutes before that is Monday 16:55, not Tuesday 07:55 while the desk is closed.
    due = datetime(2026, 11, 24, 14, 10, tzinfo=UTC)
    ticket = make_ticket()
    ticket = msgspec.structs.replace(
        ticket, decision=msgspec.structs.replace(ticket.decision, response_due=due)
    )
    await dispatch(stack, ticket)
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    stack.clock.set(datetime(2026, 11, 23, 22, 54, tzinfo=UTC))  # Monday 16:54
    await stack.settled()
    assert stack.emails("jane@acme.example") == []
    stack.clock.set(datetime(2026, 11, 23, 22, 55, tzinfo=UTC))  # Monday 16:55
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert "running late" in stack.emails("jane@acme.example")[0]["body"]
    stack.clock.set(datetime(2026, 11, 24, 13, 55, tzinfo=UTC))  # Tuesday 07:55: nothing more
    await stack.settled()
    assert len(stack.emails("jane@acme.example")) == 1


async def test_polling_timers_and_replies_leave_no_consumers_behind(stack: Stack) -> None:
    """Regression: each kv.keys() listing left a consumer for five minutes, until the limit (1000) hit."""
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    idle = Notifier(stack.bus, stack.cfg, load_policy(stack.cfg.policy), stack.clock)
    try:
        for _ in range(600):
            assert await idle.escalation.fire_due_timers() == NOW + timedelta(
                minutes=10
            )  # alice's ack timeout
        for _ in range(50):
            assert [t.number for t in await idle.channels.all_tickets()] == ["SR-1042"]
    finally:
        await idle.close()
    for stream in (f"KV_{s.KV_TIMERS}", f"KV_{s.KV_TICKETS}"):
        info = await stack.bus.js.stream_info(stream)
        assert (info.state.consumer_count or 0) <= 1, stream  # at most the running notifier's own view
    stack.clock.advance(timedelta(minutes=11))
    await stack.until(lambda: len(stack.sms(BOB)) == 1)  # and the running notifier's timers still fire


async def test_a_follow_up_before_dispatch_rides_with_the_dispatch(stack: Stack) -> None:
    queued = msgspec.structs.replace(make_ticket(), status="queued")
    await stack.bus.kv_update(s.KV_TICKETS, "SR-1042", lambda _: msgspec.json.encode(queued))
    follow_up = RelayClientMessage(
        id="relay:req-2", ticket=queued, request_id="req-2", summary="Line 3 is slow too."
    )
    await stack.bus.publish(s.notify_subject("relay"), follow_up, msg_id=follow_up.id)
    await stack.settled()
    assert stack.sms() == [], "a follow-up was texted ahead of its dispatch"
    await dispatch(stack, queued)
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    [body] = [m["body"] for m in stack.sms()]
    assert "Follow-up: Line 3 is slow too." in body and body.startswith("SR-1042 Acme Manufacturing")
    # The tech can accept it: it is theirs now (before, A answered "You have no open tickets").
    await reply(stack, "SM-a", ALICE, "accept")
    await stack.until(lambda: len(stack.sms(ALICE)) == 2)
    assert stack.sms(ALICE)[1]["body"] == "SR-1042 accepted; Jane Roe was told."


async def test_each_reply_kind_has_its_own_durable_under_the_notifier_user(
    bus: Bus, bus_config: BusConfig, service_bus_config: Callable[[str], BusConfig]
) -> None:
    """Tech replies, opt-outs and status reports each have a durable (granted to the notifier user); the
    catch-all `notifier-replies` an older release left behind is narrowed to tech replies."""
    old = ConsumerConfig(
        durable_name="notifier-replies", ack_policy=AckPolicy.EXPLICIT, filter_subject=s.REPLIES_ALL
    )
    await bus.js.add_consumer(s.STREAM_REPLIES, old)
    async with running(bus, service_bus_config("notifier")) as stack:
        stop = OptOutChanged(id="SM-stop", phone=JANE, opted_out=True, received_at=NOW, keyword="STOP")
        await bus.publish(s.OPT_OUT_CHANGED, stop, msg_id=stop.id)
        report = SmsStatusReported(
            id="SM-x.delivered", message_sid="SM-x", status="delivered", to=JANE, reported_at=NOW, key="k"
        )
        await bus.publish(s.SMS_STATUS_REPORTED, report, msg_id=report.id)
        await reply(stack, "SM-a", ALICE, "accept")
        await stack.settled()
        filters = {}
        for durable in ("notifier-replies", "notifier-optout", "notifier-status"):
            info = await bus.js.consumer_info(s.STREAM_REPLIES, durable)
            assert info.delivered.stream_seq > 0 and (info.num_ack_pending or 0) == 0, durable
            filters[durable] = info.config.filter_subject
        assert filters == {
            "notifier-replies": s.TECH_REPLIED,
            "notifier-optout": s.OPT_OUT_CHANGED,
            "notifier-status": s.SMS_STATUS_REPORTED,
        }
        value, _ = await bus.kv_get(s.KV_CONTACTS, s.kv_key(f"optout.{JANE}"))
        assert value is not None and b'"opted_out":true' in value
