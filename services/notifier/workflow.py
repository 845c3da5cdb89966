"""The notifier's commands: dispatch a ticket, acknowledge the client, relay what the client added, reopen."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

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
from services.notifier import compose, desk, suppression, timers
from services.notifier.escalation import Escalation
from services.notifier.families import FOLD
from services.notifier.internal import (
    NotifyCommand,
    TimerFired,
)
from services.notifier.timers import Timer
from services.policy.calendar import BusinessCalendar
from services.policy.coverage import describe
from services.wording import sanitize
from services.wording.values import FOLLOW_UP_MAX, TRANSCRIPT_MAX, due_of


class TicketMissing(Transient):
    """A command names a ticket that is not stored. The router stores a ticket before any command
    names it, so this is a replica that lags behind that write (retried: the consumer naks with
    backoff) or a ticket that is truly gone (after max_deliver the consumer dead-letters the command
    with this reason, logged, replayable with `python -m services.deadletters`). Never acted on from
    the command's snapshot, which could resurrect a ticket or undo a newer change."""


class Workflow(Escalation):
    # -- commands -------------------------------------------------------------------------------

    async def handle_notify(self, command: NotifyCommand, delivery: Delivery) -> None:
        if isinstance(command, DispatchTicket):
            await self.dispatch(command)
        elif isinstance(command, AcknowledgeClient):
            await self.acknowledge(command)
        elif isinstance(command, RelayClientMessage):
            await self.relay(command)
        elif isinstance(command, (ReassignTicket, ResolveTicket, SendClientUpdate)):
            await desk.handle(self, command)
        elif isinstance(command, TimerFired):
            await self.fired(
                Timer(
                    kind=command.kind, ticket_number=command.ticket_number, due=command.due, step=command.step
                )
            )
        else:
            await self.delivery_failed(command)

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

        ticket = await self.update_ticket(command.ticket.number, start)
        if ticket is None:
            raise TicketMissing(f"dispatch {command.id}: ticket {command.ticket.number} is not stored")
        if ticket.status != "dispatched":
            return
        tech = self.tech(ticket.assignee)
        if tech is None:
            await self.tell_ops(ticket, "no technician could be assigned", key=f"ops.unassigned.{command.id}")
            return
        body = await self.dispatch_text(ticket)
        await self.text_tech(tech, ticket, body, "tech_dispatch", key=f"dispatch.{command.id}")
        planned = timers.plan(
            ticket,
            dispatched_at=self.clock.now(),
            ack_timeout=self.policy.oncall.ack_timeout,
            warn_before=self.policy.delay_updates.warn_before,
            business_subtract=self.business_subtract(ticket),
        )
        await self.arm_all(planned)
        await self.timeline(
            ticket,
            "tech_notified",
            f"Texted {tech.name} ({tech.phone})",
            f"tech_notified.{command.id}",
            tech.id,
        )

    def business_subtract(self, ticket: Ticket) -> Callable[[datetime, timedelta], datetime] | None:
        decision = ticket.decision
        tier = self.policy.tiers.get(decision.tier)
        if tier is None:
            return None
        target = tier.targets.emergency if decision.priority == "emergency" else tier.targets.normal
        business = timers.warn_uses_business_time(
            business_clock=target.clock == "business",
            tier=decision.tier,
            emergency=decision.priority == "emergency",
        )
        if not business:
            return None
        calendar = self.policy.calendars.get(self.policy.desk.hours)
        return BusinessCalendar(calendar).business_subtract if calendar is not None else None

    async def acknowledge(self, command: AcknowledgeClient) -> None:
        ticket = command.ticket
        if command.suppress or (
            ticket.contact.email and not suppression.may_auto_answer(ticket.contact.email)
        ):
            await self.timeline(
                ticket,
                "note",
                "No automatic acknowledgment (automatic or role sender)",
                f"ack_suppressed.{command.id}",
                "system",
            )
            return
        client = self.client(ticket.client_id)
        hours, fee, within = "", None, None
        with contextlib.suppress(Exception):
            # The plan's words are a courtesy: a policy that cannot describe them never blocks the ack.
            coverage = describe(
                self.policy, client, ticket.opened_at, emergency=ticket.decision.priority == "emergency"
            )
            hours, fee, within = (
                coverage.hours_text,
                coverage.billable_fee,
                coverage.billable_respond_within_text,
            )
        if how := await self.tell_client(
            ticket,
            "client_ack",
            "client_ack",
            f"ack.{command.id}",
            disposition=ticket.decision.disposition,
            respond_by=due_of(ticket),
            hours=hours,
            fee=fee,
            fee_within=within,
        ):
            await self.timeline(
                ticket, "ack_sent", f"Acknowledged by {how}", f"ack_sent.{command.id}", "system"
            )

    async def relay(self, command: RelayClientMessage) -> None:
        if command.reopen:
            await self.reopen(command)
            return
        ticket = await self.ticket(command.ticket.number)
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

            await self.contacts.update(FOLD, ticket.number, add)
            what = "Voicemail transcript" if command.voicemail else "Follow-up"
            await self.timeline(
                ticket, "note", f"{what} kept for the dispatch", f"folded.{command.id}", "system"
            )
            return
        tech = self.tech(ticket.assignee)
        if tech is None:
            return
        if command.voicemail:
            body = self.tech_text(
                "tech_voicemail",
                ticket,
                voicemail=sanitize.one_line(command.voicemail, TRANSCRIPT_MAX),
                recording_url=command.recording_url,
            )
        else:
            body = self.tech_text(
                "tech_follow_up", ticket, text=sanitize.one_line(command.summary, FOLLOW_UP_MAX)
            )
        await self.text_tech(tech, ticket, body, "tech_relay", key=f"relay.{command.id}")

    async def reopen(self, command: RelayClientMessage) -> None:
        """The client wrote back within the reopen window: the ticket is the assignee's again, with
        a fresh acceptance clock; the client is told it was reopened."""

        def back(current: Ticket | None) -> Ticket | None:
            if current is None or current.status != "resolved":
                return None
            return msgspec.structs.replace(
                current, status="dispatched", resolved_at=None, accepted_at=None, eta=None
            )

        ticket = await self.update_ticket(command.ticket.number, back)
        # A redelivery finds it reopened already and repeats the sends below under the same keys.
        if ticket is None or ticket.status == "resolved":
            return
        tech = self.tech(ticket.assignee)
        text = sanitize.one_line(command.summary, FOLLOW_UP_MAX)
        if tech is not None:
            body = self.tech_text("tech_reopened", ticket, text=text)
            await self.text_tech(tech, ticket, body, "tech_dispatch", key=f"reopen.{command.id}")
        else:
            await self.tell_ops(ticket, f"reopened by the client: {text}", key=f"ops.reopen.{command.id}")
        owner = tech.name if tech is not None else self.policy.desk.ops_contact.name
        await self.tell_client(
            ticket, "client_reopened", "client_update", f"reopened.{command.id}", tech=owner
        )
        await self.rearm_ack(ticket.number, ticket.escalation_step)
