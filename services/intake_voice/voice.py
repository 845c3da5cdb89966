"""The state every webhook shares: config, policy, clock and outbox; who is calling; inbound SMS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter
from twilio.request_validator import RequestValidator

from services.common.clock import Clock, SystemClock
from services.common.metrics import Metrics
from services.contracts import subjects as s
from services.contracts.events import OptOutChanged, TechReplied
from services.contracts.requests import Attachment, Priority, Sender, ServiceRequest, ThreadKeys
from services.intake_voice import form, menu, parse
from services.intake_voice.config import VoiceConfig
from services.intake_voice.outbox import Outbox
from services.policy.coverage import Coverage, describe
from services.policy.decide import known_contact
from services.policy.matching import first_emergency
from services.policy.model import Billable, Client, Policy
from services.wording.catalog import Wording

Params = dict[str, str]


@dataclass
class Caller:
    phone: str | None
    raw: str
    client: Client | None
    name: str | None  # the contact's name when the number is one of the client's contacts


@dataclass
class Voice:
    """Everything a webhook needs: config, policy, time and the outbox. Built once per process."""

    cfg: VoiceConfig
    policy: Policy
    outbox: Outbox
    clock: Clock = field(default_factory=SystemClock)
    words: Wording = field(default_factory=Wording)  # main() passes the checked catalog with overrides

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.cfg.auth_token.reveal())
        self.script = menu.Script(self.words, self.policy, self.clock)
        self.metrics = Metrics()
        self.spool_rejected = Counter(
            "frontdesk_voice_spool_rejected",
            "Spooled events moved aside because they can never be published, by reason",
            ["reason"],
            registry=self.metrics.registry,
        )
        self.outbox.spool.on_reject = lambda reason: self.spool_rejected.labels(reason).inc()
        self.tech_phones = {
            phone: t.id for t in self.policy.techs if (phone := parse.e164(t.phone, self.cfg.region))
        }
        self._minute: datetime | None = None
        self._coverages: dict[tuple[str | None, bool], Coverage] = {}
        self._greetings: dict[tuple[str | None, str | None, int], str] = {}

    # -- what the caller hears -------------------------------------------------------------------

    def _this_minute(self) -> datetime:
        """The current minute; answers memoized for an earlier minute are dropped."""
        minute = self.clock.now().replace(second=0, microsecond=0)
        if minute != self._minute:
            self._minute = minute
            self._coverages.clear()
            self._greetings.clear()
        return minute

    def coverage(self, client: Client | None, *, emergency: bool) -> Coverage:
        """What the client's plan covers now, worked out once per client and minute.

        Why: every call asks it twice (normal and emergency) and each caller of a client asks the
        same. Calendars, on-call handoffs and targets are whole minutes and the answer is spoken to
        the minute, so the start of the minute gives every call in it the same words.
        """
        minute = self._this_minute()
        key = (client.id if client is not None else None, emergency)
        found = self._coverages.get(key)
        if found is None:
            found = self._coverages[key] = describe(self.policy, client, minute, emergency=emergency)
        return found

    def greeting(self, name: str | None, client: Client | None, *, attempt: int) -> str:
        """The greeting and menu as TwiML, rendered once per caller name, client, attempt and minute
        (names come from the policy, so the memo is bounded by it)."""
        minute = self._this_minute()
        key = (name, client.id if client is not None else None, attempt)
        found = self._greetings.get(key)
        if found is None:
            normal = self.coverage(client, emergency=False)
            offer = self.coverage(client, emergency=True).offer
            found = self.script.greeting(name, Spoken(normal, offer), attempt=attempt, state={})
            if self._minute == minute:
                self._greetings[key] = found
        return found

    # -- identification ------------------------------------------------------------------------

    def caller(self, raw: str) -> Caller:
        # Any caller id at all still hears the menu; only an E.164 one is ever texted back.
        phone = parse.e164(raw, self.cfg.region) if raw else None
        # Policy phones are validated E.164 at load, so the exact match of the one matcher suffices.
        known = known_contact(self.policy, phone=phone) if phone else None
        if known is None:
            return Caller(phone=phone, raw=raw, client=None, name=None)
        client, contact = known
        return Caller(phone=phone, raw=raw, client=client, name=contact.name)

    def request(
        self,
        p: Params,
        caller: Caller,
        *,
        subject: str,
        priority: Priority = "normal",
        hints: tuple[str, ...] = (),
        billable: bool = False,
        ticket: str | None = None,
    ) -> ServiceRequest:
        who = caller.name or caller.phone or form.caller_label(caller.raw) or "unknown caller"
        if caller.client is not None:
            who = f"{who} ({caller.client.name})"
        return ServiceRequest(
            id=form.sid(p, "CallSid"),
            channel="voice",
            received_at=self.clock.now(),
            sender=Sender(phone=caller.phone, name=caller.name),
            recipient=p.get("To", ""),
            subject=f"{subject} from {who}",
            body=f"{subject} from {who}.",
            full_text=f"{subject} from {who}.",
            thread=ThreadKeys(ticket_token=ticket),
            priority_hint=priority,
            hints=hints,
            billable_accepted=billable,
        )

    def ready(self) -> bool:
        bus = self.outbox.bus
        return bus is not None and bus.ready

    async def publish_call(self, req: ServiceRequest) -> None:
        await self.outbox.send(s.request_subject("voice"), req, msg_id=req.id)
        self.metrics.requests_received.labels("voice").inc()

    async def receive_sms(self, p: Params) -> None:
        """An inbound SMS/MMS: a consent keyword, a tech's reply, or a client's request."""
        sid = form.sid(p, "MessageSid", "SmsSid")
        text = p.get("Body", "")
        # Only an E.164 sender can be acknowledged, relayed or opted out; anything else is refused (400).
        phone = form.sender_phone(p, self.cfg.region)
        found_media = form.media(p)
        if not text.strip() and not found_media:
            raise form.Malformed("Body", "required (no text and no media)")
        now = self.clock.now()
        opted = parse.opt_keyword(text)
        if opted is not None:
            change = OptOutChanged(
                id=sid, phone=phone, opted_out=opted, received_at=now, keyword=text.strip().upper()
            )
            await self.outbox.send(s.OPT_OUT_CHANGED, change, msg_id=sid)
            return
        if phone in self.tech_phones:
            reply = parse.tech_reply(text)
            replied = TechReplied(
                id=sid,
                phone=phone,
                received_at=now,
                verb=reply.verb,
                ticket_number=reply.ticket_number,
                minutes=reply.minutes,
                reason=reply.reason,
                text=text,
            )
            await self.outbox.send(s.TECH_REPLIED, replied, msg_id=sid)
            return
        caller = self.caller(p.get("From", ""))
        attachments = tuple(
            Attachment(
                filename=url.rstrip("/").rsplit("/", 1)[-1] or f"media{i}",
                content_type=kind,
                size=0,  # unknown until fetched: Twilio only sends the URL
                object_name=url,
            )
            for i, (url, kind) in enumerate(found_media)
        )
        keyword = first_emergency(text, self.policy.emergency_keywords)
        hints = (f"keyword:{keyword}",) if keyword else ()
        first_line = text.strip().splitlines()[0][:80] if text.strip() else "Picture message"
        req = ServiceRequest(
            id=sid,
            channel="sms",
            received_at=now,
            sender=Sender(phone=phone, name=caller.name),
            # A Messaging Service may deliver from any number in its pool: record which one was used.
            recipient=p.get("To") or p.get("MessagingServiceSid", ""),
            subject=first_line,
            body=text,
            full_text=text,
            attachments=attachments,
            priority_hint="emergency" if keyword else "normal",
            hints=hints,
        )
        await self.outbox.send(s.request_subject("sms"), req, msg_id=sid)
        self.metrics.requests_received.labels("sms").inc()


@dataclass(frozen=True)
class Spoken:
    """Today's coverage for a normal request, plus the billable emergency offer when there is one."""

    coverage: Coverage
    offer: Billable | None

    @property
    def in_hours(self) -> bool:
        return self.coverage.in_hours

    @property
    def hours_text(self) -> str:
        return self.coverage.hours_text
