"""What the notifier does with a tech's reply (ACK, ETA, DELAY, DONE, help) and with an opt-out."""

from __future__ import annotations

import logging

import msgspec

from services.common.consumer import Delivery
from services.contracts import (
    OptOutChanged,
    SendSms,
    TechReplied,
    Ticket,
)
from services.contracts import subjects as s
from services.notifier import compose, replies
from services.notifier.channels import Channels
from services.notifier.escalation import Escalation
from services.notifier.families import HELP
from services.policy.decide import UNKNOWN_CLIENT_ID
from services.policy.model import Tech
from services.state.contacts import LAST_TOUCH, OPT_OUT, UPDATE_STAMP, LastTouch, OptOut
from services.wording import times

log = logging.getLogger(__name__)


class Answers:
    """Techs' replies and opt-outs, carried out with the notifier's channels and timers."""

    def __init__(self, channels: Channels, escalation: Escalation) -> None:
        self.channels = channels
        self.escalation = escalation

    async def handle_opt_out(self, event: OptOutChanged, delivery: Delivery) -> None:
        # A plain put: the phone's lane keeps STOP and START in arrival order, and a redelivery
        # writes the same record again.
        record = OptOut(opted_out=event.opted_out, at=event.received_at)
        await self.channels.contacts.put(OPT_OUT, event.phone, record)

    async def handle_reply(self, event: TechReplied, delivery: Delivery) -> None:
        seen_key = s.kv_key(f"reply.{event.id}")
        seen, _ = await self.channels.bus.kv_get(s.KV_SEEN, seen_key)
        if seen is not None:
            return  # a redelivered DELAY must not push the time twice
        tech = self.channels.tech_by_phone(event.phone)
        if tech is None:
            log.info("reply from a number that is not a tech", extra={"id": event.id})
            return
        now = self.channels.clock.now()
        candidates = await self.channels.open_tickets_of(tech.id)
        outcome = replies.apply(event, candidates, now)
        if isinstance(outcome, replies.Help):
            await self.help(tech, event, outcome)
        else:
            await self.applied(tech, event, outcome)
        await self.channels.bus.kv_put(s.KV_SEEN, seen_key, b"1")

    async def help(self, tech: Tech, event: TechReplied, outcome: replies.Help) -> None:
        allowed = await self.channels.contacts.admit(
            HELP, event.phone, lambda counter: replies.next_help(counter or replies.HelpCounter())
        )
        if allowed:
            now = self.channels.clock.now()
            body = compose.tech_help(
                self.channels.words,
                outcome.why,
                list(outcome.open_numbers),
                zone=self.channels.zone,
                now=now,
                named=outcome.named,
            )
            await self.channels.send(
                SendSms(
                    key=f"help.{event.id}", to=event.phone, body=body, purpose="tech_help", created_at=now
                )
            )

    async def applied(self, tech: Tech, event: TechReplied, outcome: replies.Applied) -> None:
        wanted = outcome.ticket

        def write(current: Ticket | None) -> Ticket | None:
            if current is None or current.status == "resolved" or current.assignee != tech.id:
                return None
            return msgspec.structs.replace(
                current,
                status=wanted.status,
                accepted_at=wanted.accepted_at,
                resolved_at=wanted.resolved_at,
                eta=wanted.eta,
                response_due=wanted.response_due,
            )

        stored = await self.channels.update_ticket(wanted.number, write)
        await self.channels.contacts.forget(HELP, event.phone)
        if stored is None or stored.assignee != tech.id:
            return
        key = s.kv_key(f"{outcome.effect}.{event.id}")
        told: str | None = None
        if outcome.effect == "accepted":
            told = await self.channels.tell_client(
                stored, "client_accepted", "client_update", key, tech=tech.name, eta=stored.eta
            )
            eta = f", ETA {times.stamp(stored.eta, self.channels.zone)}" if stored.eta else ""
            await self.channels.timeline(stored, "tech_accepted", f"{tech.name} accepted{eta}", key, tech.id)
        elif outcome.effect == "eta" and stored.eta is not None:
            told = await self.channels.tell_client(
                stored, "client_eta", "client_update", key, tech=tech.name, eta=stored.eta
            )
            text = f"{tech.name} gave an ETA of {times.stamp(stored.eta, self.channels.zone)}"
            await self.channels.timeline(stored, "eta_given", text, key, tech.id)
        elif outcome.effect == "delayed" and stored.response_due is not None:
            told = await self.channels.tell_client(
                stored,
                "client_delay",
                "client_delay",
                key,
                tech=tech.name,
                eta=stored.response_due,
                reason=event.reason,
            )
            await self.channels.contacts.put(UPDATE_STAMP, stored.number, self.channels.clock.now())
            # The commitment moved: the due and warn timers move with it.
            planned = self.escalation.plan(stored)
            await self.escalation.arm_all([timer for timer in planned if timer.kind != "ack"], replace=True)
            until = times.stamp(stored.response_due, self.channels.zone)
            text = f"{tech.name} delayed it to {until}: {event.reason or 'no reason given'}"
            await self.channels.timeline(stored, "delay_update_sent", text, key, tech.id)
        elif outcome.effect == "resolved":
            now = self.channels.clock.now()
            touch = LastTouch(
                text=compose.last_touch(tech.name, stored, now, self.channels.zone),
                ticket_number=stored.number,
                at=now,
            )
            if stored.client_id != UNKNOWN_CLIENT_ID:
                await self.channels.contacts.put(LAST_TOUCH, stored.client_id, touch)
            told = await self.channels.tell_client(
                stored,
                "client_resolved",
                "client_resolved",
                key,
                tech=tech.name,
                reopen_until=now + self.channels.policy.reopen_window,
            )
            await self.channels.timeline(stored, "resolved", f"{tech.name} resolved it", key, tech.id)
        # Every understood reply gets a short confirmation, so the tech knows it landed.
        confirm = self.channels.tech_text(
            "tech_confirm", stored, effect=outcome.effect, eta=stored.eta, client_told=told is not None
        )
        await self.channels.text_tech(
            tech, stored, confirm, "tech_confirm", key=s.kv_key(f"confirm.{event.id}")
        )
