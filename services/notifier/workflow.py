"""The notifier's commands: dispatch a ticket, acknowledge the client, relay what the client added, reopen."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from services.common.bus import Transient
from services.common.consumer import Delivery
from services.contracts import (
    AcknowledgeClient,
    DispatchTicket,
    RelayClientMessage,
    Ticket,
)
from services.contracts.commands import ReassignTicket, ResolveTicket, SendClientUpdate
from services.notifier import compose, desk, suppression
from services.notifier.channels import Channels
from services.notifier.escalation import Escalation
from services.notifier.families import FOLD
from services.notifier.internal import (
    NotifyCommand,
    TimerFired,
)
from services.notifier.timers import Timer
from services.policy.coverage import describe
from services.policy.decide import span_text
from services.wording import sanitize
from services.wording.values import FOLLOW_UP_MAX, TRANSCRIPT_MAX, due_of


class TicketMissing(Transient):
    """A command names a ticket that is not stored. The router stores a ticket before any command
    names it, so this is a replica that lags behind that write (retried: the consumer naks with
    backoff) or a ticket that is truly gone (after max_deliver the consumer dead-letters the command
    with this reason, logged, replayable with `python -m services.deadletters`). Never acted on from
    the command's snapshot, which could resurrect a ticket or undo a newer change."""


class Workflow:
    """The notifier's commands, carried out with its channels and its timers."""

    def __init__(self, channels: Channels, escalation: Escalation) -> None:
        self.channels = channels
        self.escalation = escalation

    async def handle_notify(self, command: NotifyCommand, delivery: Delivery) -> None:
        if isinstance(command, DispatchTicket):
            await self.dispatch(command)
        elif isinstance(command, AcknowledgeClient):
            await self.acknowledge(command)
        elif isinstance(command, RelayClientMessage):
            await self.relay(command)
        elif isinstance(command, (ReassignTicket, ResolveTicket, SendClientUpdate)):
            await desk.handle(self.channels, self.escalation, command)
        elif isinstance(command, TimerFired):
            await self.escalation.fired(
                Timer(
                    kind=command.kind, ticket_number=command.ticket_number, due=command.due, step=command.step
                )
            )
        else:
            await self.escalation.delivery_failed(command)

    async def dispatch(self, command: DispatchTicket) -> None:
        """Hand the ticket as stored to its tech; the command's snapshot only names it."""

        def start(current: Ticket | None) -> Ticket | None:
            if current is None or current.status in ("accepted", "resolved"):
                return None
            decision = current.decision
            new = msgspec.structs.replace(
                current,
                status="dispatched",
                assignee=current.assignee or decision.assignee or decision.oncall,
                response_due=current.response_due or decision.response_due,
            )
            return None if new == current else new

        # The follow-ups are read alongside the compare-and-set (one round trip less before the SMS):
        # a relay of this ticket runs in its lane, before or after this dispatch, never during it.
        number = command.ticket.number
        ticket, folded = await asyncio.gather(
            self.channels.update_ticket(number, start), self.channels.folded(number)
        )
        if ticket is None:
            raise TicketMissing(f"dispatch {command.id}: ticket {command.ticket.number} is not stored")
        if ticket.status != "dispatched":
            return
        tech = self.channels.tech(ticket.assignee)
        if tech is None:
            await self.channels.tell_ops(
                ticket, "no technician could be assigned", key=f"ops.unassigned.{command.id}"
            )
            return
        body = await self.channels.dispatch_text(ticket, folded=folded)
        await self.channels.text_tech(tech, ticket, body, "tech_dispatch", key=f"dispatch.{command.id}")
        planned = self.escalation.plan(ticket)
        # Independent writes, each idempotent: they go out together, and a redelivery repeats both.
        notified = f"Texted {tech.name} ({tech.phone})"
        await asyncio.gather(
            self.escalation.arm_all(planned),
            self.channels.timeline(ticket, "tech_notified", notified, f"tech_notified.{command.id}", tech.id),
        )

    async def acknowledge(self, command: AcknowledgeClient) -> None:
        ticket = command.ticket
        if command.suppress or (
            ticket.contact.email and not suppression.may_auto_answer(ticket.contact.email)
        ):
            await self.channels.timeline(
                ticket,
                "note",
                "No automatic acknowledgment (automatic or role sender)",
                f"ack_suppressed.{command.id}",
                "system",
            )
            return
        client = self.channels.client(ticket.client_id)
        hours, offer = "", None
        with contextlib.suppress(Exception):
            # The plan's words are a courtesy: a policy that cannot describe them never blocks the ack.
            coverage = describe(
                self.channels.policy,
                client,
                ticket.opened_at,
                emergency=ticket.decision.priority == "emergency",
            )
            hours, offer = coverage.hours_text, coverage.offer
        if how := await self.channels.tell_client(
            ticket,
            "client_ack",
            "client_ack",
            f"ack.{command.id}",
            disposition=ticket.decision.disposition,
            respond_by=due_of(ticket),
            hours=hours,
            fee=offer.fee if offer is not None else None,
            fee_within=span_text(offer.respond_within) if offer is not None else None,
        ):
            await self.channels.timeline(
                ticket, "ack_sent", f"Acknowledged by {how}", f"ack_sent.{command.id}", "system"
            )

    async def relay(self, command: RelayClientMessage) -> None:
        if command.reopen:
            await self.reopen(command)
            return
        ticket = await self.channels.ticket(command.ticket.number)
        if ticket is None:
            raise TicketMissing(f"relay {command.id}: ticket {command.ticket.number} is not stored")
        if ticket.status == "resolved":
            return
        if ticket.status == "queued":
            # Nobody has been texted yet: the follow-up rides with the dispatch, never ahead of it.
            def add(current: compose.Folded | None) -> compose.Folded | None:
                folded = current or compose.Folded()
                new = compose.fold(
                    folded,
                    command.id,
                    text=command.summary,
                    voicemail=command.voicemail,
                    recording=command.recording_url,
                )
                return None if new == folded else new

            await self.channels.contacts.update(FOLD, ticket.number, add)
            what = "Voicemail transcript" if command.voicemail else "Follow-up"
            await self.channels.timeline(
                ticket, "note", f"{what} kept for the dispatch", f"folded.{command.id}", "system"
            )
            return
        tech = self.channels.tech(ticket.assignee)
        if tech is None:
            return
        if command.voicemail:
            body = self.channels.tech_text(
                "tech_voicemail",
                ticket,
                voicemail=sanitize.one_line(command.voicemail, TRANSCRIPT_MAX),
                recording_url=command.recording_url,
            )
        else:
            body = self.channels.tech_text(
                "tech_follow_up", ticket, text=sanitize.one_line(command.summary, FOLLOW_UP_MAX)
            )
        await self.channels.text_tech(tech, ticket, body, "tech_relay", key=f"relay.{command.id}")

    async def reopen(self, command: RelayClientMessage) -> None:
        """The client wrote back within the reopen window: the ticket is the assignee's again, with
        a fresh acceptance clock; the client is told it was reopened."""

        def back(current: Ticket | None) -> Ticket | None:
            if current is None or current.status != "resolved":
                return None
            return msgspec.structs.replace(
                current, status="dispatched", resolved_at=None, accepted_at=None, eta=None
            )

        ticket = await self.channels.update_ticket(command.ticket.number, back)
        # A redelivery finds it reopened already and repeats the sends below under the same keys.
        if ticket is None or ticket.status == "resolved":
            return
        tech = self.channels.tech(ticket.assignee)
        text = sanitize.one_line(command.summary, FOLLOW_UP_MAX)
        if tech is not None:
            body = self.channels.tech_text("tech_reopened", ticket, text=text)
            await self.channels.text_tech(tech, ticket, body, "tech_dispatch", key=f"reopen.{command.id}")
        else:
            await self.channels.tell_ops(
                ticket, f"reopened by the client: {text}", key=f"ops.reopen.{command.id}"
            )
        owner = tech.name if tech is not None else self.channels.policy.desk.ops_contact.name
        await self.channels.tell_client(
            ticket, "client_reopened", "client_update", f"reopened.{command.id}", tech=owner
        )
        await self.escalation.rearm_ack(ticket.number, ticket.escalation_step)
