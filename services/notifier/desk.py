"""Desk actions from the console (reassign, resolve, update the client): the channels and the escalation."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from services.contracts.commands import DeskCommand, ReassignTicket, ResolveTicket, SendClientUpdate
from services.contracts.tickets import Ticket
from services.wording import sanitize

if TYPE_CHECKING:
    from services.notifier.channels import Channels
    from services.notifier.escalation import Escalation

log = logging.getLogger(__name__)
# Characters of a desk update the client receives (on one line; an SMS is cut further to its segments).
UPDATE_LIMIT = 600


async def handle(channels: Channels, escalation: Escalation, command: DeskCommand) -> None:
    """Every step is idempotent (CAS, keys derived from the command id): a redelivery acts once."""
    ticket = await channels.ticket(command.ticket_number)
    if ticket is None:
        log.warning("desk action for an unknown ticket", extra={"id": command.id})
        return
    if isinstance(command, ReassignTicket):
        await reassign(channels, escalation, ticket, command)
    elif isinstance(command, ResolveTicket):
        await resolve(channels, ticket, command)
    else:
        await update(channels, ticket, command)


async def refuse(channels: Channels, ticket: Ticket, command: DeskCommand, why: str) -> None:
    """A refused action still lands on the timeline, so the user sees why nothing happened."""
    await channels.timeline(ticket, "note", why, f"desk.{command.id}", command.user)


async def reassign(
    channels: Channels, escalation: Escalation, ticket: Ticket, command: ReassignTicket
) -> None:
    tech = channels.tech(command.tech)
    if tech is None:
        await refuse(channels, ticket, command, f"Reassign by {command.user} refused: no tech {command.tech}")
        return
    if ticket.status == "resolved":
        await refuse(channels, ticket, command, f"Reassign by {command.user} refused: already resolved")
        return

    def move(current: Ticket | None) -> Ticket | None:
        if current is None or current.status == "resolved":
            return None
        # The new tech must accept: the ticket is dispatched to them, the acceptance clock restarts.
        new = msgspec.structs.replace(
            current,
            assignee=tech.id,
            status="dispatched",
            eta=None,
            response_due=current.response_due or current.decision.response_due,
        )
        return None if new == current else new

    moved = await channels.update_ticket(ticket.number, move)
    if moved is None or moved.assignee != tech.id or moved.status != "dispatched":
        return
    body = await channels.dispatch_text(moved)
    await channels.text_tech(tech, moved, body, "tech_dispatch", key=f"desk.{command.id}")
    await escalation.rearm_ack(moved.number, moved.escalation_step)
    text = f"Reassigned to {tech.name} by {command.user}; texted {tech.name}"
    await channels.timeline(moved, "tech_notified", text, f"desk.{command.id}", command.user)


async def resolve(channels: Channels, ticket: Ticket, command: ResolveTicket) -> None:
    now = channels.clock.now()

    def close(current: Ticket | None) -> Ticket | None:
        if current is None or current.status == "resolved":
            return None
        return msgspec.structs.replace(current, status="resolved", resolved_at=now)

    stored = await channels.update_ticket(ticket.number, close)
    if stored is None or stored.status != "resolved":
        return
    tech = channels.tech(stored.assignee)
    await channels.tell_client(
        stored,
        "client_resolved",
        "client_resolved",
        f"desk.{command.id}",
        tech=tech.name if tech is not None else channels.policy.desk.name,
        reopen_until=now + channels.policy.reopen_window,
    )
    await channels.timeline(
        stored, "resolved", f"Resolved by {command.user} at the desk", f"desk.{command.id}", command.user
    )


async def update(channels: Channels, ticket: Ticket, command: SendClientUpdate) -> None:
    if not command.text.strip():
        await refuse(channels, ticket, command, f"Client update by {command.user} refused: empty text")
        return
    text = sanitize.one_line(command.text, UPDATE_LIMIT)
    sent = await channels.tell_client(
        ticket, "client_update", "client_update", f"desk.{command.id}", text=text
    )
    text = (
        f"Client update sent by {command.user}: {sanitize.one_line(command.text, 120)}"
        if sent
        else f"Client update by {command.user} not sent: no way to reach the client"
    )
    await channels.timeline(ticket, "note", text, f"desk.{command.id}", command.user)
