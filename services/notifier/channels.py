"""The notifier's channels: who is who in the policy, the ticket store, how a message reaches someone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from services.common.bus import Bus
from services.common.clock import Clock
from services.common.kvview import KvView
from services.common.metrics import Metrics
from services.contracts import (
    SendEmail,
    SendSms,
    Ticket,
    TimelineEntry,
    threading,
)
from services.contracts import subjects as s
from services.contracts.commands import Purpose
from services.contracts.events import TimelineKind
from services.notifier import compose, replies, suppression
from services.notifier.config import NotifierConfig
from services.notifier.delivery import Outbound
from services.notifier.families import FOLD
from services.policy.decide import UNKNOWN_CLIENT_ID
from services.policy.matching import matching_contact
from services.policy.model import Client, Contact, Policy, Tech
from services.state import tickets
from services.state.contacts import ContactState
from services.state.tickets import TicketStore
from services.wording.catalog import Wording


class Channels:
    """Lookups, stores and sending: what every part of the notifier stands on (a collaborator of
    Escalation, Workflow and Answers, which each hold it)."""

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
        # A live view kept by one watch (see KvView: never kv.keys() per poll or per reply).
        self.tickets: KvView[Ticket] = KvView(bus, s.KV_TICKETS, ">", tickets.decode)
        self.store = TicketStore(bus)
        self.contacts = ContactState(bus)

    # -- lookups ----------------------------------------------------------------------------------

    def tech(self, tech_id: str | None) -> Tech | None:
        return self.policy.tech(tech_id) if tech_id else None

    def tech_by_phone(self, phone: str) -> Tech | None:
        return next((t for t in self.policy.techs if t.phone == phone), None)

    def client(self, client_id: str) -> Client | None:
        return self.policy.client(client_id)

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
        touch = await self.contacts.last_touch(ticket.client_id)
        return "" if touch is None or touch.ticket_number == ticket.number else touch.text

    async def ticket(self, number: str) -> Ticket | None:
        return await self.store.get(number)

    async def update_ticket(
        self, number: str, change: Callable[[Ticket | None], Ticket | None]
    ) -> Ticket | None:
        """CAS-update a ticket; `change` returns None to leave it alone. Returns the stored ticket."""
        return await self.store.update(number, change)

    async def folded(self, number: str) -> compose.Folded:
        """What the client added while the ticket waited in the queue (see relay)."""
        return await self.contacts.get(FOLD, number) or compose.Folded()

    async def dispatch_text(
        self, ticket: Ticket, *, escalated: bool = False, folded: compose.Folded | None = None
    ) -> str:
        """The text that hands a ticket to a tech: the job, the client's notes and last touch, follow-ups.

        Follow-ups are read from the store (here, or by the caller as `folded`), never from a view nor
        skipped for an immediate dispatch: every ticket is stored "queued" until its dispatch, so a
        follow-up may have been kept a moment ago, and a view could trail it."""
        if folded is None:
            folded = await self.folded(ticket.number)
        return compose.tech_dispatch(
            self.words,
            self.named(ticket),
            zone=self.zone,
            now=self.clock.now(),
            notes=self.notes(ticket.client_id),
            last_touch=await self.last_touch(ticket),
            escalated=escalated,
            folded=folded,
        )

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
        client = self.policy.client(ticket.client_id)
        if client is None:
            return None
        return matching_contact(client.contacts, email=ticket.contact.email, phone=ticket.contact.phone)

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
