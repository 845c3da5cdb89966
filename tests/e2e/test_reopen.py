"""After DONE: a client's "thanks" within the reopen window is noted, other words reopen the ticket
(and say so), and after the window a message opens a new ticket."""

from __future__ import annotations

from datetime import timedelta

from services.contracts import subjects as s
from services.timeline.reader import read_timeline
from tests.e2e.stack import (
    ALICE,
    JANE,
    MON_1000,
    Stack,
    sms_for,
)


async def ticket_exists(stack: Stack, number: str) -> bool:
    value, _ = await stack.bus.kv_get(s.KV_TICKETS, number)
    return value is not None


async def test_thanks_is_noted_other_words_reopen_and_later_ones_open_a_new_ticket(stack: Stack) -> None:
    stack.clock.set(MON_1000)
    await stack.text(JANE, "The printer on floor 2 jams on every page")
    await sms_for(stack, ALICE)  # the dispatch
    await sms_for(stack, JANE)  # the acknowledgment
    await stack.text(ALICE, "DONE")
    [_, resolved] = await sms_for(stack, JANE, count=2)
    assert resolved["body"].startswith("SR-1001: Alice Nguyen marked your request resolved.")
    assert "Reply by Thu Nov 26, 10:00 AM CST and we will reopen it." in resolved["body"]
    await stack.settled()

    stack.clock.advance(timedelta(hours=2))
    await stack.text(JANE, "Thanks, all good now!")
    await stack.settled()
    assert not await ticket_exists(stack, "SR-1002"), "a thank-you opened a new ticket"
    assert len(await stack.sms_to(JANE)) == 2  # nobody answers a thank-you
    notes = [e.text for e in await read_timeline(stack.bus, "acme") if e.kind == "note"]
    assert any("noted, no new ticket): Thanks, all good now!" in text for text in notes)

    stack.clock.advance(timedelta(days=1))
    await stack.text(JANE, "It jams again since this morning")
    [*_, reopened] = await sms_for(stack, ALICE, count=3)  # dispatch, DONE confirmation, reopened
    assert reopened["body"].startswith(
        "SR-1001 REOPENED by Jane Roe +13125550150: It jams again since this morning"
    )
    [*_, told] = await sms_for(stack, JANE, count=3)
    assert told["body"] == "SR-1001: we reopened your request and passed your message to Alice Nguyen."
    await stack.settled()
    assert not await ticket_exists(stack, "SR-1002")
    kinds = [e.kind for e in await read_timeline(stack.bus, "acme")]
    assert "reopened" in kinds

    await stack.text(ALICE, "DONE")
    await sms_for(stack, JANE, count=4)
    await stack.settled()
    stack.clock.advance(timedelta(days=3, minutes=1))  # past the 3-day window
    await stack.text(JANE, "Now the scanner is offline")
    await sms_for(stack, JANE, count=5)  # a new acknowledgment
    await stack.settled()
    assert await ticket_exists(stack, "SR-1002")
