"""Desk actions from the console, carried out by the notifier: reassign, resolve, update the client."""

from __future__ import annotations

from services.contracts import subjects as s
from services.contracts.commands import DeskCommand, ReassignTicket, ResolveTicket, SendClientUpdate
from services.notifier.desk import client_update
from tests.notifier.stack import ALICE, CAROL, NOW, Stack, dispatch, make_ticket, stored, timeline


async def act(stack: Stack, action: str, command: DeskCommand, msg_id: str | None = None) -> None:
    await stack.bus.publish(s.desk_subject(action), command, msg_id=msg_id or f"desk.{command.id}")


async def test_reassign_texts_the_new_tech_once_and_lands_on_the_timeline(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    command = ReassignTicket(
        id="a" * 32, ticket_number="SR-1042", tech="carol", user="dina", requested_at=NOW
    )
    await act(stack, "reassign", command)
    await stack.until(lambda: len(stack.sms(CAROL)) == 1)
    assert stack.sms(CAROL)[0]["body"].startswith("SR-1042 Acme Manufacturing (premium)")
    # Redelivered under another Nats-Msg-Id (a crash before the ack): no second SMS.
    await act(stack, "reassign", command, msg_id="again")
    await stack.settled()
    assert len(stack.sms(CAROL)) == 1
    ticket = await stored(stack, "SR-1042")
    assert (ticket.assignee, ticket.status) == ("carol", "dispatched")
    entries = [e for e in await timeline(stack) if e.id == f"desk.{'a' * 32}"]
    assert [(e.kind, e.actor) for e in entries] == [("tech_notified", "dina")]
    assert entries[0].text == "Reassigned to Carol Diaz by dina; texted Carol Diaz"


async def test_reassign_to_an_unknown_tech_is_refused_on_the_timeline(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    command = ReassignTicket(id="b" * 32, ticket_number="SR-1042", tech="zed", user="dina", requested_at=NOW)
    await act(stack, "reassign", command)
    await stack.settled()
    notes = [e for e in await timeline(stack) if e.id == f"desk.{'b' * 32}"]
    assert [(n.kind, n.text) for n in notes] == [("note", "Reassign by dina refused: no tech zed")]
    assert (await stored(stack, "SR-1042")).assignee == "alice"


async def test_resolve_closes_the_ticket_and_tells_the_client(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await act(
        stack, "resolve", ResolveTicket(id="c" * 32, ticket_number="SR-1042", user="dina", requested_at=NOW)
    )
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert "has marked your request resolved" in stack.emails("jane@acme.example")[0]["body"]
    ticket = await stored(stack, "SR-1042")
    assert ticket.status == "resolved" and ticket.resolved_at == NOW
    resolved = [e for e in await timeline(stack) if e.kind == "resolved"]
    assert [(e.actor, e.text) for e in resolved] == [("dina", "Resolved by dina at the desk")]


async def test_client_update_goes_out_in_the_clients_channel(stack: Stack) -> None:
    await dispatch(stack, make_ticket())
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    update = SendClientUpdate(
        id="d" * 32,
        ticket_number="SR-1042",
        user="dina",
        text="Parts arrive\ntomorrow 9 AM.",
        requested_at=NOW,
    )
    await act(stack, "update", update)
    await stack.until(lambda: len(stack.emails("jane@acme.example")) == 1)
    assert "SR-1042: Parts arrive tomorrow 9 AM." in stack.emails("jane@acme.example")[0]["body"]
    notes = [e for e in await timeline(stack) if e.id == f"desk.{'d' * 32}"]
    assert [(n.kind, n.actor) for n in notes] == [("note", "dina")]
    assert notes[0].text.startswith("Client update sent by dina: Parts arrive")


def test_client_update_wording_is_one_line_with_the_number_first() -> None:
    assert client_update(make_ticket(), "  a\r\nb  ") == "SR-1042: a b"
