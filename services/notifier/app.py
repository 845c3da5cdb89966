"""Notifier service: dispatch texts, client updates, acceptance timers, escalation and the outbound sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from nats.js.errors import KeyNotFoundError
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.consumer import ConsumerSpec, Delivery, LaneConsumer
from services.common.http import HttpServer, health_app
from services.common.kvview import KvView
from services.common.metrics import Metrics, follow_storage, watch_consumer_lag
from services.contracts import (
    AcknowledgeClient,
    DispatchTicket,
    OptOutChanged,
    RelayClientMessage,
    SendEmail,
    SendSms,
    SmsStatusReported,
    TechReplied,
    Ticket,
    TimelineEntry,
    threading,
)
from services.contracts import subjects as s
from services.contracts.commands import Purpose, ReassignTicket, ResolveTicket, SendClientUpdate
from services.contracts.events import TimelineKind
from services.notifier import compose, desk, replies, suppression, timers
from services.notifier.config import NotifierConfig
from services.notifier.families import FOLD, HELP
from services.notifier.internal import (
    TIMER_FIRED,
    DeliveryFailed,
    NotifyCommand,
    TimerFired,
    recipient_lane,
    sender_lane,
    ticket_lane,
)
from services.notifier.outbound import Outbound, Sender
from services.notifier.timers import Timer
from services.policy.calendar import BusinessCalendar
from services.policy.coverage import describe
from services.policy.decide import UNKNOWN_CLIENT_ID
from services.policy.load import load_policy
from services.policy.model import Client, Contact, Policy, Tech
from services.state import tickets
from services.state.contacts import LAST_TOUCH, OPT_OUT, UPDATE_STAMP, ContactState, LastTouch, OptOut
from services.state.tickets import TicketStore
from services.state.timers import run_timers
from services.wording import catalog as wording
from services.wording import sanitize, times
from services.wording.catalog import Wording
from services.wording.values import FOLLOW_UP_MAX, TRANSCRIPT_MAX, due_of

log = logging.getLogger(__name__)
OPS = "ops"  # assignee once every tech was tried: the desk ops contact owns the ticket

_timer = msgspec.json.Decoder(Timer)


class Notifier:
    def __init__(
        self, bus: Bus, cfg: NotifierConfig, policy: Policy, clock: Clock, words: Wording | None = None
    ) -> None:
        self.bus = bus
        self.cfg = cfg
        self.policy = policy
        self.clock = clock
        self.words = words or Wording()
        self.zone = ZoneInfo(policy.desk.timezone)  # techs, ops and the desk read desk time
        self.metrics = Metrics()
        self.secret = cfg.thread_secret.reveal().encode()
        # Live views kept by one watch each (see KvView: never kv.keys() per poll or per reply).
        self.timers: KvView[Timer] = KvView(bus, s.KV_TIMERS, f"{timers.OWNER}.>", _timer.decode)
        self.tickets: KvView[Ticket] = KvView(bus, s.KV_TICKETS, ">", tickets.decode)
        self.store = TicketStore(bus)
        self.contacts = ContactState(bus)

    # -- lookups ----------------------------------------------------------------------------------

    def tech(self, tech_id: str | None) -> Tech | None:
        return next((t for t in self.policy.techs if t.id == tech_id), None)

    def tech_by_phone(self, phone: str) -> Tech | None:
        return next((t for t in self.policy.techs if t.phone == phone), None)

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.policy.clients if c.id == client_id), None)

    def notes(self, client_id: str) -> str:
        client = self.client(client_id)
        return client.notes if client is not None else ""

    def client_zone(self, ticket: Ticket) -> ZoneInfo:
        """Clients read times in their own zone (the policy's client timezone), else the desk's."""
        client = self.client(ticket.client_id)
        return ZoneInfo(client.timezone) if client is not None and client.timezone else self.zone

    def tech_text(self, kind: str, ticket: Ticket, **values: Any) -> str:
        return compose.tech_text(
            self.words, kind, self.named(ticket), zone=self.zone, now=self.clock.now(), **values
        )

    def named(self, ticket: Ticket) -> Ticket:
        """The ticket as messages describe it: a sender who gave no name gets the directory's."""
        known = None if ticket.contact.name else self.directory_contact(ticket)
        if known is None or not known.name:
            return ticket
        return msgspec.structs.replace(
            ticket, contact=msgspec.structs.replace(ticket.contact, name=known.name)
        )

    async def last_touch(self, ticket: Ticket) -> str:
        """The client's last finished job, unless it is this very ticket (a reopened one, say)."""
        if ticket.client_id == UNKNOWN_CLIENT_ID:
            return ""  # strangers share that id: one stranger's job is nothing to another's tech
        touch = await self.contacts.get(LAST_TOUCH, ticket.client_id)
        return "" if touch is None or touch.ticket_number == ticket.number else touch.text

    async def ticket(self, number: str) -> Ticket | None:
        return await self.store.get(number)

    async def update_ticket(
        self, number: str, change: Callable[[Ticket | None], Ticket | None]
    ) -> Ticket | None:
        """CAS-update a ticket; `change` returns None to leave it alone. Returns the stored ticket."""
        return await self.store.update(number, change)

    async def all_tickets(self) -> list[Ticket]:
        await self.tickets.ensure()
        return list(self.tickets.items.values())

    async def open_tickets_of(self, tech_id: str) -> list[Ticket]:
        """The tech's open tickets as stored now: the view says which, a fresh read says what they hold."""
        fresh = []
        for listed in replies.open_tickets(await self.all_tickets(), tech_id):
            current = await self.ticket(listed.number)
            if current is not None:
                fresh.append(current)
        return replies.open_tickets(fresh, tech_id)

    # -- outbound -------------------------------------------------------------------------------

    async def send(self, message: Outbound) -> None:
        # The idempotency key doubles as Nats-Msg-Id: a redelivered command publishes nothing new.
        subject = s.OUTBOX_SMS if isinstance(message, SendSms) else s.OUTBOX_EMAIL
        await self.bus.publish(subject, message, msg_id=message.key)

    async def text_tech(self, tech: Tech, ticket: Ticket, body: str, purpose: Purpose, key: str) -> None:
        await self.send(
            SendSms(
                key=key,
                to=tech.phone,
                body=body,
                purpose=purpose,
                created_at=self.clock.now(),
                client_id=ticket.client_id,
                ticket_number=ticket.number,
            )
        )

    async def tell_ops(self, ticket: Ticket, what: str, key: str) -> None:
        ops = self.policy.desk.ops_contact
        body = self.tech_text("ops_alert", ticket, what=what, assignee=ticket.assignee)
        now = self.clock.now()
        if ops.phone:
            await self.send(
                SendSms(
                    key=key,
                    to=ops.phone,
                    body=body,
                    purpose="ops_alert",
                    created_at=now,
                    client_id=ticket.client_id,
                    ticket_number=ticket.number,
                    fallback_email=ops.email,
                )
            )
        elif ops.email:
            await self.send(
                SendEmail(
                    key=key,
                    to=ops.email,
                    subject=f"OPS {ticket.number}",
                    body=body,
                    purpose="ops_alert",
                    created_at=now,
                    client_id=ticket.client_id,
                    ticket_number=ticket.number,
                )
            )

    def directory_contact(self, ticket: Ticket) -> Contact | None:
        """The policy's entry for whoever raised the ticket, matched by phone or email address."""
        client = next((c for c in self.policy.clients if c.id == ticket.client_id), None)
        if client is None:
            return None
        phone, email = ticket.contact.phone, (ticket.contact.email or "").lower()
        for known in client.contacts:
            if (phone and known.phone == phone) or (email and (known.email or "").lower() == email):
                return known
        return None

    async def tell_client(
        self, ticket: Ticket, kind: str, purpose: Purpose, key: str, **values: Any
    ) -> str | None:
        """Answer on the channel the client used (or prefers), worded for that channel; SMS falls back
        to email when it fails. Returns how it went ("SMS to +1..."), or None when nothing was sent."""
        contact = ticket.contact
        known = self.directory_contact(ticket)
        now = self.clock.now()
        # A caller's email address comes from the directory: it is where a dead number falls back to.
        email = contact.email or (known.email if known else None)
        email_ok = bool(email) and suppression.may_auto_answer(email or "")
        wants_email = ticket.channel == "email" or (known is not None and known.preferred == "email")

        def body(channel: compose.ClientChannel) -> str:
            return compose.client_text(
                self.words,
                kind,
                self.named(ticket),
                channel,
                zone=self.client_zone(ticket),
                now=now,
                desk=self.policy.desk.name,
                **values,
            )

        if contact.phone and not (wants_email and email_ok):
            await self.send(
                SendSms(
                    key=key,
                    to=contact.phone,
                    body=body("sms"),
                    purpose=purpose,
                    created_at=now,
                    client_id=ticket.client_id,
                    ticket_number=ticket.number,
                    fallback_email=email if email_ok else None,
                )
            )
            return f"SMS to {contact.phone}"
        if email and email_ok:
            token = threading.subject_token(ticket.number, self.secret)
            origin = ticket.origin_message_id
            await self.send(
                SendEmail(
                    key=key,
                    to=email,
                    subject=compose.email_subject(ticket, token),
                    body=body("email"),
                    purpose=purpose,
                    created_at=now,
                    client_id=ticket.client_id,
                    ticket_number=ticket.number,
                    in_reply_to=origin,
                    references=(origin,) if origin else (),
                )
            )
            return f"email to {email}"
        return None

    async def timeline(
        self, ticket: Ticket, kind: TimelineKind, text: str, entry_id: str, actor: str
    ) -> None:
        entry = TimelineEntry(
            id=entry_id,
            at=self.clock.now(),
            client_id=ticket.client_id,
            kind=kind,
            text=text,
            service="notifier",
            ticket_number=ticket.number,
            request_id=ticket.request_id,
            actor=actor,
        )
        await self.bus.publish(s.timeline_subject(ticket.client_id), entry, msg_id=entry_id)

    # -- timers ---------------------------------------------------------------------------------

    async def arm(self, timer: Timer, *, replace: bool = False) -> None:
        """Create the timer unless one exists (a redelivered dispatch must not push it back)."""
        encoded = msgspec.json.encode(timer)

        def put(current: bytes | None) -> bytes | None:
            return encoded if current is None or replace else None

        await self.bus.kv_update(s.KV_TIMERS, timer.key, put)

    async def fire_due_timers(self) -> datetime | None:
        """Publish every due timer's command, then delete it; returns the next due instant."""
        await self.timers.ensure()
        self.metrics.timers_pending.set(len(self.timers.items))
        now = self.clock.now()
        upcoming: datetime | None = None
        kv = await self.bus.kv(s.KV_TIMERS)
        for key, seen in sorted(self.timers.items.items(), key=lambda item: item[1].due):
            if seen.due > now:
                upcoming = seen.due if upcoming is None else min(upcoming, seen.due)
                continue
            # The view may trail a re-arm or a delete by another replica: act on the key as it is now.
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                self.timers.forget(key)
                continue
            if not entry.value:
                self.timers.forget(key)
                continue
            timer = _timer.decode(entry.value)
            if timer.due > now:
                upcoming = timer.due if upcoming is None else min(upcoming, timer.due)
                continue
            fired = TimerFired(
                id=timer.fire_id,
                kind=timer.kind,
                ticket_number=timer.ticket_number,
                due=timer.due,
                step=timer.step,
            )
            await self.bus.publish(s.notify_subject(TIMER_FIRED), fired, msg_id=fired.id)
            # Delete only the revision we fired: a timer re-armed meanwhile survives. The view learns
            # of the delete from the watch (forgetting here could drop a re-arm it already saw).
            with contextlib.suppress(Exception):
                await kv.delete(key, last=entry.revision)
        return upcoming

    async def timer_loop(self, stop: asyncio.Event) -> None:
        await run_timers(
            self.fire_due_timers, self.timers, self.clock, stop, poll=self.cfg.timer_poll, name="notifier"
        )

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
        given = command.ticket
        decision = given.decision
        first = given.assignee or decision.assignee or decision.oncall

        def start(current: Ticket | None) -> Ticket | None:
            ticket = current or given
            if ticket.status in ("accepted", "resolved"):
                return None
            new = msgspec.structs.replace(
                ticket,
                status="dispatched",
                assignee=ticket.assignee or first,
                response_due=ticket.response_due or decision.response_due,
            )
            return None if new == current else new

        ticket = await self.update_ticket(given.number, start)
        if ticket is None or ticket.status != "dispatched":
            return
        tech = self.tech(ticket.assignee)
        if tech is None:
            await self.tell_ops(ticket, "no technician could be assigned", key=f"ops.unassigned.{command.id}")
            return
        body = compose.tech_dispatch(
            self.words,
            self.named(ticket),
            zone=self.zone,
            now=self.clock.now(),
            notes=self.notes(ticket.client_id),
            last_touch=await self.last_touch(ticket),
            folded=await self.folded(ticket.number),
        )
        await self.text_tech(tech, ticket, body, "tech_dispatch", key=f"dispatch.{command.id}")
        now = self.clock.now()
        for timer in timers.plan(
            ticket,
            dispatched_at=now,
            ack_timeout=self.policy.oncall.ack_timeout,
            warn_before=self.policy.delay_updates.warn_before,
            business_subtract=self.business_subtract(ticket),
        ):
            await self.arm(timer)
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
        ticket = await self.ticket(command.ticket.number) or command.ticket
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
        timer = Timer(
            kind="ack",
            ticket_number=ticket.number,
            due=self.clock.now() + self.policy.oncall.ack_timeout,
            step=ticket.escalation_step,
        )
        await self.arm(timer, replace=True)

    async def folded(self, number: str) -> compose.Folded:
        """What the client added while the ticket waited in the queue (see relay)."""
        return await self.contacts.get(FOLD, number) or compose.Folded()

    async def fired(self, timer: Timer) -> None:
        ticket = await self.ticket(timer.ticket_number)
        if ticket is None:
            return
        firing = timers.on_fire(
            timer,
            ticket,
            rotation=self.policy.oncall.rotation,
            warn_before=self.policy.delay_updates.warn_before,
        )
        if isinstance(firing, timers.Escalate):
            await self.escalate(ticket, firing)
        elif isinstance(firing, timers.WarnLate):
            self.metrics.tickets_at_risk.inc()
            await self.warn_late(ticket, firing.new_estimate, timer)
        elif isinstance(firing, timers.Breach):
            self.metrics.tickets_breached.inc()
            ops = self.policy.desk.ops_contact
            key = f"breach.{ticket.number}"
            await self.tell_client(ticket, "client_missed", "client_update", key, ops_name=ops.name)
            await self.tell_ops(ticket, "response target missed, nobody accepted", key=f"ops.{key}")
            await self.timeline(
                ticket, "breached", "Response target missed", f"breached.{ticket.number}", "system"
            )

    async def escalate(self, ticket: Ticket, step: timers.Escalate) -> None:
        new_assignee = step.tech or OPS

        def move(current: Ticket | None) -> Ticket | None:
            if current is None or current.status != "dispatched" or current.escalation_step != step.step - 1:
                return None
            return msgspec.structs.replace(current, assignee=new_assignee, escalation_step=step.step)

        moved = await self.update_ticket(ticket.number, move)
        if moved is None or moved.escalation_step != step.step or moved.assignee != new_assignee:
            return
        tech = self.tech(step.tech)
        if tech is not None:
            body = compose.tech_dispatch(
                self.words,
                self.named(moved),
                zone=self.zone,
                now=self.clock.now(),
                notes=self.notes(moved.client_id),
                last_touch=await self.last_touch(moved),
                escalated=True,
                folded=await self.folded(moved.number),
            )
            await self.text_tech(
                tech, moved, body, "tech_escalation", key=f"escalate.{moved.number}.{step.step}"
            )
            await self.arm(
                Timer(
                    kind="ack",
                    ticket_number=moved.number,
                    due=self.clock.now() + self.policy.oncall.ack_timeout,
                    step=step.step,
                ),
                replace=True,
            )
            text = f"Escalated to {tech.name} ({tech.phone})"
        else:
            await self.tell_ops(moved, "no technician accepted", key=f"escalate.{moved.number}.{step.step}")
            text = "Escalated to the operations desk"
        await self.timeline(moved, "escalated", text, f"escalated.{moved.number}.{step.step}", new_assignee)

    async def warn_late(self, ticket: Ticket, estimate: datetime, timer: Timer) -> None:
        now = self.clock.now()
        interval = self.policy.delay_updates.min_interval

        def stamp(last: datetime | None) -> tuple[bool, datetime]:
            return last is None or now - last >= interval, now

        # Throttle client updates per ticket so a DELAY and a warn do not arrive back to back.
        if not await self.contacts.admit(UPDATE_STAMP, ticket.number, stamp):
            return
        key = f"warn.{ticket.number}.{timer.due.isoformat()}"
        await self.tell_client(
            ticket, "client_running_late", "client_delay", s.kv_key(key), estimate=estimate
        )
        await self.tell_ops(ticket, "running late on the response target", key=s.kv_key(f"ops.{key}"))
        await self.timeline(
            ticket,
            "delay_update_sent",
            f"Client told we are running late; new estimate {times.stamp(estimate, self.zone)}",
            s.kv_key(key),
            "system",
        )

    async def delivery_failed(self, failed: DeliveryFailed) -> None:
        if failed.ticket_number is None:
            return
        ticket = await self.ticket(failed.ticket_number)
        if ticket is None or ticket.status != "dispatched":
            return
        tech = self.tech(ticket.assignee)
        if tech is None or tech.phone != failed.to:
            return
        # An unreachable tech cannot accept: treat it as an acceptance timeout now.
        await self.fired(
            Timer(kind="ack", ticket_number=ticket.number, due=failed.at, step=ticket.escalation_step)
        )

    # -- replies --------------------------------------------------------------------------------

    async def handle_reply(self, event: TechReplied | OptOutChanged, delivery: Delivery) -> None:
        if isinstance(event, OptOutChanged):
            record = OptOut(opted_out=event.opted_out, at=event.received_at)
            await self.contacts.put(OPT_OUT, event.phone, record)
            return
        seen_key = s.kv_key(f"reply.{event.id}")
        seen, _ = await self.bus.kv_get(s.KV_SEEN, seen_key)
        if seen is not None:
            return  # a redelivered DELAY must not push the time twice
        tech = self.tech_by_phone(event.phone)
        if tech is None:
            log.info("reply from a number that is not a tech", extra={"id": event.id})
            return
        now = self.clock.now()
        candidates = await self.open_tickets_of(tech.id)
        outcome = replies.apply(event, candidates, now)
        if isinstance(outcome, replies.Help):
            await self.help(tech, event, outcome)
        else:
            await self.applied(tech, event, outcome)
        kv = await self.bus.kv(s.KV_SEEN)
        await kv.put(seen_key, b"1")

    async def help(self, tech: Tech, event: TechReplied, outcome: replies.Help) -> None:
        allowed = await self.contacts.admit(
            HELP, event.phone, lambda counter: replies.next_help(counter or replies.HelpCounter())
        )
        if allowed:
            now = self.clock.now()
            body = compose.tech_help(
                self.words,
                outcome.why,
                list(outcome.open_numbers),
                zone=self.zone,
                now=now,
                named=outcome.named,
            )
            await self.send(
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

        stored = await self.update_ticket(wanted.number, write)
        await self.contacts.forget(HELP, event.phone)
        if stored is None or stored.assignee != tech.id:
            return
        key = s.kv_key(f"{outcome.effect}.{event.id}")
        told: str | None = None
        if outcome.effect == "accepted":
            told = await self.tell_client(
                stored, "client_accepted", "client_update", key, tech=tech.name, eta=stored.eta
            )
            eta = f", ETA {times.stamp(stored.eta, self.zone)}" if stored.eta else ""
            await self.timeline(stored, "tech_accepted", f"{tech.name} accepted{eta}", key, tech.id)
        elif outcome.effect == "eta" and stored.eta is not None:
            told = await self.tell_client(
                stored, "client_eta", "client_update", key, tech=tech.name, eta=stored.eta
            )
            text = f"{tech.name} gave an ETA of {times.stamp(stored.eta, self.zone)}"
            await self.timeline(stored, "eta_given", text, key, tech.id)
        elif outcome.effect == "delayed" and stored.response_due is not None:
            told = await self.tell_client(
                stored,
                "client_delay",
                "client_delay",
                key,
                tech=tech.name,
                eta=stored.response_due,
                reason=event.reason,
            )
            await self.contacts.put(UPDATE_STAMP, stored.number, self.clock.now())
            # The commitment moved: the due and warn timers move with it.
            for timer in timers.plan(
                stored,
                dispatched_at=self.clock.now(),
                ack_timeout=self.policy.oncall.ack_timeout,
                warn_before=self.policy.delay_updates.warn_before,
                business_subtract=self.business_subtract(stored),
            ):
                if timer.kind != "ack":
                    await self.arm(timer, replace=True)
            until = times.stamp(stored.response_due, self.zone)
            text = f"{tech.name} delayed it to {until}: {event.reason or 'no reason given'}"
            await self.timeline(stored, "delay_update_sent", text, key, tech.id)
        elif outcome.effect == "resolved":
            now = self.clock.now()
            touch = LastTouch(
                text=compose.last_touch(tech.name, stored, now, self.zone),
                ticket_number=stored.number,
                at=now,
            )
            if stored.client_id != UNKNOWN_CLIENT_ID:
                await self.contacts.put(LAST_TOUCH, stored.client_id, touch)
            told = await self.tell_client(
                stored,
                "client_resolved",
                "client_resolved",
                key,
                tech=tech.name,
                reopen_until=now + self.policy.reopen_window,
            )
            await self.timeline(stored, "resolved", f"{tech.name} resolved it", key, tech.id)
        # Every understood reply gets a short confirmation, so the tech knows it landed.
        confirm = self.tech_text(
            "tech_confirm", stored, effect=outcome.effect, eta=stored.eta, client_told=told is not None
        )
        await self.text_tech(tech, stored, confirm, "tech_confirm", key=s.kv_key(f"confirm.{event.id}"))


async def main(cfg: NotifierConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    clock = clock or SystemClock()
    policy = load_policy(cfg.policy)
    words = wording.load(cfg.templates or None)  # a template that cannot render refuses the start
    bus = await Bus.connect(cfg.bus, "notifier", stop=stop)
    await bus.ensure_topology(stop=stop)
    http_client = AsyncTwilioHttpClient(timeout=10)
    twilio = TwilioClient(cfg.twilio.account_sid, cfg.twilio.auth_token.reveal(), http_client=http_client)
    if cfg.twilio.api_base:
        # The sandbox speaks Twilio's REST paths; only the host differs.
        twilio.api.base_url = cfg.twilio.api_base.rstrip("/")
    notifier = Notifier(bus, cfg, policy, clock, words)
    sender = Sender(bus, cfg, clock, twilio)
    sender.metrics = notifier.metrics  # one registry per process, served on /metrics

    async def on_reply(event: TechReplied | OptOutChanged | SmsStatusReported, delivery: Delivery) -> None:
        if isinstance(event, SmsStatusReported):
            await sender.reported(event)
        else:
            await notifier.handle_reply(event, delivery)

    width = cfg.concurrency
    consumers = [
        LaneConsumer(
            bus,
            ConsumerSpec(s.STREAM_NOTIFY, "notifier", s.NOTIFY_ALL),
            msgspec.json.Decoder(NotifyCommand).decode,
            notifier.handle_notify,
            lanes=ticket_lane,
            width=width,
        ),
        LaneConsumer(
            bus,
            ConsumerSpec(s.STREAM_REPLIES, "notifier-replies", s.REPLIES_ALL),
            msgspec.json.Decoder(TechReplied | OptOutChanged | SmsStatusReported).decode,
            on_reply,
            lanes=sender_lane,
            width=width,
        ),
        LaneConsumer(
            bus,
            ConsumerSpec(s.STREAM_OUTBOX, "notifier-sender", s.OUTBOX_ALL, ack_wait=60.0),
            msgspec.json.Decoder(SendSms | SendEmail).decode,
            sender.handle,
            lanes=recipient_lane,
            width=width,
        ),
    ]
    follow_storage(sender.metrics.registry, bus)
    server = HttpServer(health_app(lambda: bus.ready, None, sender.metrics.registry), cfg.host, cfg.http_port)
    await server.start()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    tasks.append(asyncio.create_task(notifier.timer_loop(stop)))
    lagging = [(c.spec.stream, c.spec.durable) for c in consumers]
    tasks.append(asyncio.create_task(watch_consumer_lag(notifier.metrics, bus, lagging, stop)))
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await notifier.tickets.close()  # the replies consumer's view: its watch consumer is deleted
        await server.stop()
        await http_client.close()
        await bus.close()
