"""The router never treats an unauthenticated sender as the client it claims to be."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.contracts import DispatchTicket, ThreadKeys
from services.contracts import subjects as s
from services.contracts.requests import SenderAuth
from tests.router import stack

FORGED = SenderAuth(verdict="unauthenticated", method="dmarc", reason="dmarc=fail (no aligned pass)")
OUR_MESSAGE_ID = f"<SR-1001.abc.{'0' * 16}@frontdesk.test>"
PASSED = SenderAuth(verdict="authenticated", method="dmarc", reason="dmarc=pass")


@pytest.mark.parametrize("auth", [PASSED, FORGED])
async def test_urgent_mail_pages_on_call_only_when_the_sender_is_authenticated(
    bus: Bus, bus_config: BusConfig, auth: SenderAuth
) -> None:
    urgent = stack.request("u1", at=stack.FRIDAY_18, subject="URGENT server down", sender_auth=auth)
    async with stack.router(bus_config):
        await bus.publish(s.request_subject("email"), urgent, msg_id="u1")
        await stack.settled(bus)
    opened = await stack.ticket(bus, "SR-1001")
    assert opened is not None
    sent = {msg_id: command for msg_id, command in await stack.commands(bus)}
    entries = await stack.timeline(bus)
    if auth.trusted:
        assert (opened.client_id, opened.decision.priority) == ("acme", "emergency")
        assert opened.decision.disposition == "page_oncall"
        assert opened.contact.email == "jane@acme.example"
        assert set(sent) == {"ack:SR-1001", "dispatch:SR-1001"}
        return
    # Acme's premium emergency target would page on-call at this hour; the forger gets the unknown tier.
    assert opened.client_id == "unknown" and opened.decision.tier == "complimentary"
    assert opened.decision.priority == "normal" and opened.decision.disposition != "page_oncall"
    assert opened.decision.reasons[0].startswith("Sender not authenticated (dmarc=fail")
    # No acknowledgment, and the ticket holds no address anything could be sent to later.
    assert "ack:SR-1001" not in sent
    assert opened.contact.email is None and opened.contact.phone is None
    assert all(not isinstance(c, DispatchTicket) or c.ticket.contact.email is None for c in sent.values())
    # Kept and visible on the unknown timeline, with the reason.
    assert {e.client_id for e in entries} == {"unknown"}
    received = next(e for e in entries if e.kind == "request_received")
    assert "claiming to be jane@acme.example" in received.text and "dmarc=fail" in received.text
    note = next(e for e in entries if e.kind == "note")
    assert note.text.startswith("No acknowledgment sent: sender not authenticated")


@pytest.mark.parametrize(
    "follow_up",
    [
        dict(thread=ThreadKeys(in_reply_to=("<m1@acme.example>",))),
        dict(thread=ThreadKeys(references=("<m1@acme.example>",))),
        dict(thread=ThreadKeys(ticket_token="SR-1001", token_signed=True)),
        dict(thread=ThreadKeys(ticket_token="SR-1001")),
        dict(
            thread=ThreadKeys(references=(f"<SR-1001.abc.{'0' * 16}@frontdesk.test>",), references_ours=True)
        ),
    ],
    ids=["in-reply-to", "references", "signed-token", "bare-token", "our-message-id"],
)
async def test_unauthenticated_follow_up_threads_to_nothing_and_is_not_relayed(
    bus: Bus, bus_config: BusConfig, follow_up: dict[str, Any]
) -> None:
    first = stack.request("t1", thread=ThreadKeys(message_id="<m1@acme.example>"))
    async with stack.router(bus_config):
        await bus.publish(s.request_subject("email"), first, msg_id="t1")
        await stack.settled(bus)
        forged = stack.request("t2", sender_auth=FORGED, **follow_up)
        await bus.publish(s.request_subject("email"), forged, msg_id="t2")
        await stack.settled(bus)
    original = await stack.ticket(bus, "SR-1001")
    assert original is not None and original.request_ids == ("t1",)
    assert await stack.ticket_numbers(bus) == ["SR-1001", "SR-1002"]
    second = await stack.ticket(bus, "SR-1002")
    assert second is not None and second.client_id == "unknown"
    assert not [i for i, _ in await stack.commands(bus) if i.startswith("relay:")]
    assert "threaded" not in [e.kind for e in await stack.timeline(bus)]


async def test_mail_to_postmaster_reaches_the_ops_timeline_and_is_never_answered(
    bus: Bus, bus_config: BusConfig
) -> None:
    abuse = stack.request("p1", recipient="postmaster@frontdesk.test", subject="Abuse report: URGENT")
    async with stack.router(bus_config):
        await bus.publish(s.request_subject("email"), abuse, msg_id="p1")
        await stack.settled(bus)
    assert await stack.ticket_numbers(bus) == []
    assert await stack.commands(bus) == []
    (entry,) = await stack.timeline(bus)
    assert (entry.client_id, entry.kind, entry.request_id) == ("postmaster", "request_received", "p1")
    assert entry.text.startswith("email from jane@acme.example")
