"""Acceptance scenarios of the issue, run against the whole stack (see conftest.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.contracts import subjects as s
from tests.e2e.stack import (
    ALICE,
    BOB,
    CAROL,
    HANK,
    JANE,
    MON_1000,
    MON_2100,
    TUE_0800,
    TWILIO_FROM,
    Stack,
    emails_for,
    recipients,
    sms_for,
)
from tests.support import until


async def acknowledged_email_ticket(stack: Stack) -> dict[str, Any]:
    """Scenario 1's opening: Jane emails at 10:00 on a Monday; alice is texted, Jane acknowledged."""
    stack.clock.set(MON_1000)
    await stack.mail("jane@acme.example", "Printer on floor 2 jams", "It jams on every second page.")
    await sms_for(stack, ALICE)
    return (await emails_for(stack, "jane@acme.example"))[0]


async def test_weekday_email_reaches_assigned_tech_and_acknowledges_client(stack: Stack) -> None:
    ack = await acknowledged_email_ticket(stack)

    [dispatch] = await stack.sms_to(ALICE)
    assert dispatch["from"] == TWILIO_FROM
    assert dispatch["body"].startswith("SR-1001 Acme Manufacturing (premium)")
    assert "It jams on every second page." in dispatch["body"]
    # Premium normal: 4 business hours from 10:00 Chicago.
    assert "Due: Mon Nov 23, 2:00 PM CST" in dispatch["body"]
    assert ack["from"] == "support@frontdesk.test"
    assert "[SR-1001-" in ack["subject"]
    assert 'We have your request "Printer on floor 2 jams" as ticket SR-1001.' in ack["body"]
    assert "A technician will respond today by 2:00 PM." in ack["body"]
    assert "leave a message" not in ack["body"].lower()
    await stack.settled()
    assert await recipients(stack) == [ALICE]
    assert len(await stack.emails()) == 1


async def test_premium_call_after_hours_pressing_1_pages_oncall(stack: Stack) -> None:
    stack.clock.set(MON_2100)
    exchanges = await stack.call(JANE, ["1"])

    menu = next(e for e in exchanges if e["url"].split("?")[0].endswith("/twilio/voice/menu"))
    assert "<Dial" in menu["twiml"] and f">{BOB}</Dial>" in menu["twiml"]
    # Bob is paged; he missed the call, so Jane left a voicemail, whose transcript follows the page.
    [page, voicemail] = await sms_for(stack, BOB, count=2)
    assert page["body"].startswith("SR-1001 EMERGENCY Acme Manufacturing (premium)")
    # Premium emergency runs on a 24x7 clock: one hour from 21:00.
    assert "Due: Mon Nov 23, 10:00 PM CST" in page["body"]
    assert voicemail["body"].startswith(
        'SR-1001 voicemail from Jane Roe +13125550150: "Sandbox transcription of the caller\'s message."'
    )
    assert "\nListen: https://api.twilio.com/" in voicemail["body"]
    [ack] = await sms_for(stack, JANE)
    assert "paging our on-call technician" in ack["body"]
    await stack.settled()
    assert await recipients(stack) == [BOB, BOB, JANE]


async def test_complimentary_call_after_hours_is_queued_until_next_open(stack: Stack) -> None:
    stack.clock.set(MON_2100)
    exchanges = await stack.call(HANK, ["1"])

    spoken = " ".join(e["twiml"] for e in exchanges)
    assert "<Dial" not in spoken
    # Next open is Tuesday 08:00; complimentary promises 4 business hours from then.
    assert "We will respond tomorrow by 12:00 PM." in spoken
    await sms_for(stack, HANK)  # the acknowledgment
    await stack.settled()
    assert await recipients(stack) == [HANK]

    stack.clock.set(TUE_0800 - timedelta(minutes=1))
    await stack.settled()
    assert await recipients(stack) == [HANK], "a tech was texted before the desk opened"

    stack.clock.set(TUE_0800)

    async def tech_texted() -> list[dict[str, Any]]:
        return [m for m in await stack.messages() if m["to"] != HANK]

    [dispatch] = await until(tech_texted, what="the queued dispatch at next open")
    assert dispatch["to"] in (ALICE, CAROL)  # globex rotates over m365 techs; bob is excluded
    assert dispatch["body"].startswith("SR-1001 EMERGENCY Globex Logistics (complimentary)")
    assert "Due: Tue Nov 24, 12:00 PM CST" in dispatch["body"]
    # The voicemail's transcript arrived while the ticket waited: it rides with the dispatch.
    assert 'Voicemail: "Sandbox transcription of the caller\'s message."' in dispatch["body"]
    await stack.settled()
    assert await recipients(stack) == sorted([HANK, dispatch["to"]])


async def test_tech_delay_sms_reaches_client(stack: Stack) -> None:
    await acknowledged_email_ticket(stack)

    answer = await stack.text(ALICE, "DELAY 60 waiting on parts")
    assert answer["status"] == 200

    # The request came by email, so the client hears back on that thread.
    delay = (await emails_for(stack, "jane@acme.example", count=2))[1]
    assert (
        "Alice Nguyen is running late on your request SR-1001; the new estimate is today by" in delay["body"]
    )
    assert "Reason: waiting on parts." in delay["body"]
    assert "[SR-1001-" in delay["subject"]
    await stack.settled()
    assert await recipients(stack) == [ALICE, ALICE]  # the dispatch, then the DELAY's confirmation
    confirmation = (await stack.sms_to(ALICE))[1]["body"]
    assert confirmation == "SR-1001 delayed to 3:00 PM; Jane Roe was told."
    assert len(await stack.emails()) == 2


async def test_reply_email_threads_onto_its_ticket(stack: Stack) -> None:
    ack = await acknowledged_email_ticket(stack)

    # A mail client that drops In-Reply-To still keeps the subject: the signed token alone must thread.
    await stack.mail("jane@acme.example", f"Re: {ack['subject']}", "Also page 3 is smudged.")

    relayed = (await sms_for(stack, ALICE, count=2))[1]
    assert relayed["body"] == "SR-1001 follow-up from Jane Roe jane@acme.example: Also page 3 is smudged."
    await stack.settled()
    value, _ = await stack.bus.kv_get(s.KV_TICKETS, "SR-1002")
    assert value is None, "the reply opened a new ticket"
    assert await recipients(stack) == [ALICE, ALICE]
    assert len(await stack.emails()) == 1  # no second acknowledgment


async def test_unreachable_handset_reported_later_falls_back_to_email(stack: Stack) -> None:
    """Twilio accepts the acknowledgment SMS, then reports 30003 through the status callback."""
    await stack.fault(JANE, 30003)
    stack.clock.set(MON_2100)
    await stack.call(JANE, ["1"])
    [ack_sms] = await sms_for(stack, JANE)
    assert "paging our on-call technician" in ack_sms["body"]
    [fallback] = await emails_for(stack, "jane@acme.example")
    assert "paging our on-call technician" in fallback["body"]
    await stack.settled()
    assert await recipients(stack) == [BOB, BOB, JANE]  # page, voicemail; no second SMS to a dead handset
    assert len(await stack.emails()) == 1
    callbacks = [c["params"]["MessageStatus"] for c in stack.sandbox.ledger.callbacks]
    assert "undelivered" in callbacks and callbacks.count("delivered") >= 1  # bob's page arrived
