"""intake_voice: Twilio call, IVR, voicemail and SMS webhooks turned into events on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.http import HttpServer
from services.common.metrics import Metrics
from services.contracts import subjects as s
from services.contracts.events import OptOutChanged, RequestAmended, SmsStatusReported, TechReplied
from services.contracts.requests import Attachment, Priority, Sender, ServiceRequest, ThreadKeys
from services.intake_voice import menu, parse
from services.intake_voice.config import VoiceConfig
from services.intake_voice.outbox import Outbox
from services.intake_voice.signature import signed_url, valid
from services.intake_voice.spool import Spool
from services.policy.coverage import Coverage, describe
from services.policy.decide import identify, oncall_at
from services.policy.load import load_policy
from services.policy.model import Client, Policy
from services.wording import catalog as wording
from services.wording.catalog import Wording

log = logging.getLogger(__name__)
XML = "application/xml"
Params = dict[str, str]
Handler = Callable[[Params], Awaitable[str]]

_CHOICE_DIGIT = {"emergency": "1", "new": "2", "existing": "3", "billable": "9"}


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
        self.tech_phones = {
            phone: t.id for t in self.policy.techs if (phone := parse.e164(t.phone, self.cfg.region))
        }

    # -- identification ------------------------------------------------------------------------

    def caller(self, raw: str) -> Caller:
        phone = parse.e164(raw, self.cfg.region) if raw else None
        client = identify(self.policy, email=None, phone=phone) if phone else None
        name = None
        if client is not None:
            name = next((c.name for c in client.contacts if c.phone and parse.e164(c.phone) == phone), None)
        return Caller(phone=phone, raw=raw, client=client, name=name)

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
        who = caller.name or caller.phone or caller.raw or "unknown caller"
        if caller.client is not None:
            who = f"{who} ({caller.client.name})"
        return ServiceRequest(
            id=p["CallSid"],
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

    async def publish_call(self, req: ServiceRequest) -> None:
        await self.outbox.send(s.request_subject("voice"), req, msg_id=req.id)
        self.metrics.requests_received.labels("voice").inc()


def _xml(body: str) -> Response:
    return Response(content=body, media_type=XML)


def build_app(voice: Voice) -> FastAPI:
    app = FastAPI(title="frontdesk intake_voice")
    cfg = voice.cfg

    async def signed(request: Request) -> Params | None:
        """The form params when X-Twilio-Signature matches the URL Twilio called, else None."""
        body = (await request.body()).decode("utf-8", "replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        url = signed_url(
            cfg.public_url,
            request.url.path,
            request.url.query,
            request.headers,
            trust_forwarded=cfg.trust_forwarded,
        )
        ok = valid(
            voice.validator,
            url,
            pairs,
            request.headers.get("x-twilio-signature", ""),
            request.headers.get("x-twilio-webhooks-signature-settings", ""),
        )
        if not ok:
            log.warning("rejected unsigned webhook", extra={"url": request.url.path})
            return None
        params = dict(pairs)
        params.update(dict(request.query_params))  # our own state, signed with the URL
        return params

    def webhook(path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                params = await signed(request)
                if params is None:
                    voice.metrics.messages_refused.labels("invalid_signature").inc()
                    return Response("invalid signature", status_code=403, media_type="text/plain")
                try:
                    return _xml(await handler(params))
                except KeyError as exc:
                    # A signed request without a field we need: say which, never a 500.
                    voice.metrics.messages_refused.labels("missing_field").inc()
                    return Response(f"missing field {exc}", status_code=400, media_type="text/plain")

            endpoint.__name__ = handler.__name__
            app.add_api_route(path, endpoint, methods=["POST"], response_class=Response)
            return handler

        return register

    @webhook("/twilio/voice")
    async def incoming(p: Params) -> str:
        caller = voice.caller(p.get("From", ""))
        coverage = describe(voice.policy, caller.client, voice.clock.now(), emergency=False)
        offer = describe(voice.policy, caller.client, voice.clock.now(), emergency=True)
        name = caller.name or (caller.client.name if caller.client else None)
        return voice.script.greeting(name, _Spoken(coverage, offer.billable_fee), attempt=1, state={})

    @webhook("/twilio/voice/menu")
    async def choose(p: Params) -> str:
        caller = voice.caller(p.get("From", ""))
        attempt = int(p.get("attempt", "1") or "1")
        choice = parse.ivr_choice(p.get("Digits", ""), p.get("SpeechResult", ""))
        now = voice.clock.now()
        emergency_cov = describe(voice.policy, caller.client, now, emergency=True)
        if choice == "billable" and not emergency_cov.billable_fee:
            choice = None  # 9 was never offered to this caller
        if choice is None:
            if attempt < menu.MAX_MENU_ATTEMPTS:
                normal = describe(voice.policy, caller.client, now, emergency=False)
                spoken = _Spoken(normal, emergency_cov.billable_fee)
                return voice.script.greeting(None, spoken, attempt=attempt + 1, state={})
            await voice.publish_call(voice.request(p, caller, subject="Voicemail", hints=("ivr:none",)))
            return voice.script.voicemail("", {"choice": "none"})
        digit = _CHOICE_DIGIT[choice]
        hints = (f"ivr:{digit}",) + (("speech",) if not p.get("Digits") else ())
        if choice == "existing":
            return voice.script.ask_ticket({})
        if choice == "new":
            await voice.publish_call(voice.request(p, caller, subject="New request by phone", hints=hints))
            return voice.script.voicemail(voice.script.line("describe_request"), {"choice": digit})
        billable = choice == "billable"
        req = voice.request(
            p, caller, subject="Emergency call", priority="emergency", hints=hints, billable=billable
        )
        await voice.publish_call(req)
        if billable or emergency_cov.disposition == "page_oncall":
            tech = voice.policy.tech(oncall_at(voice.policy, now))
            if tech is not None:
                return voice.script.dial(tech.phone, {"choice": digit})
        return voice.script.voicemail(
            voice.script.emergency_queued(caller.client, emergency_cov), {"choice": digit}
        )

    @webhook("/twilio/voice/ticket")
    async def ticket(p: Params) -> str:
        caller = voice.caller(p.get("From", ""))
        number = parse.ticket_number(p.get("Digits", ""), p.get("SpeechResult", ""))
        hints = ("ivr:3",) + (("speech",) if not p.get("Digits") else ())
        subject = f"Call about ticket {number}" if number else "Call about an existing ticket"
        await voice.publish_call(voice.request(p, caller, subject=subject, hints=hints, ticket=number))
        return voice.script.voicemail(voice.script.line("about_ticket"), {"choice": "3"})

    @webhook("/twilio/voice/dial-result")
    async def dial_result(p: Params) -> str:
        if p.get("DialCallStatus", "") == "completed":
            return voice.script.goodbye()
        lead = voice.script.line("tech_unreachable")
        return voice.script.voicemail(lead, {"choice": p.get("choice", "")})

    @webhook("/twilio/voice/recorded")
    async def recorded(p: Params) -> str:
        return voice.script.goodbye()

    @webhook("/twilio/voice/recording")
    async def recording(p: Params) -> str:
        rec = p.get("RecordingSid", "")
        if rec and p.get("RecordingStatus", "completed") == "completed":
            amended = RequestAmended(
                id=f"{rec}:recording",
                request_id=p["CallSid"],
                received_at=voice.clock.now(),
                recording_url=p.get("RecordingUrl"),
                recording_seconds=_int(p.get("RecordingDuration", "")),
            )
            await voice.outbox.send(s.REQUEST_AMENDED, amended, msg_id=amended.id)
        return menu.empty()

    @webhook("/twilio/voice/transcription")
    async def transcription(p: Params) -> str:
        rec = p.get("RecordingSid", "")
        if rec and p.get("TranscriptionStatus", "completed") == "completed":
            amended = RequestAmended(
                id=f"{rec}:transcription",
                request_id=p["CallSid"],
                received_at=voice.clock.now(),
                recording_url=p.get("RecordingUrl"),
                transcription=p.get("TranscriptionText", ""),
            )
            await voice.outbox.send(s.REQUEST_AMENDED, amended, msg_id=amended.id)
        return menu.empty()

    @webhook("/twilio/voice/status")
    async def status(p: Params) -> str:
        call = p.get("CallSid", "")
        if call and p.get("CallStatus") == "completed" and not voice.outbox.holds(call):
            # Same msg id as any request already published for this call: JetStream drops the
            # duplicate, so "Missed call" is stored only when the caller never got that far.
            caller = voice.caller(p.get("From", ""))
            await voice.publish_call(voice.request(p, caller, subject="Missed call", hints=("missed_call",)))
        return menu.empty()

    @webhook("/twilio/sms")
    async def sms(p: Params) -> str:
        await _sms(voice, p)
        return menu.empty()

    @webhook("/twilio/sms/status")
    async def sms_status(p: Params) -> str:
        status = p.get("MessageStatus") or p.get("SmsStatus", "")
        # Only final states matter to the notifier; queued/sent are progress, answered and dropped.
        if status in ("delivered", "undelivered", "failed"):
            sid = p["MessageSid"]
            code = _int(p.get("ErrorCode", ""))
            report = SmsStatusReported(
                id=f"{sid}.{status}",
                message_sid=sid,
                status=status,  # type: ignore[arg-type]
                to=parse.e164(p.get("To", ""), voice.cfg.region) or p.get("To", ""),
                reported_at=voice.clock.now(),
                key=p.get("key", ""),
                error_code=code,
            )
            # Twilio retries callbacks it could not deliver; the msg id makes a retry a no-op.
            await voice.outbox.send(s.SMS_STATUS_REPORTED, report, msg_id=report.id)
        return menu.empty()

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        bus = voice.outbox.bus
        ok = bus is not None and bus.connected
        body = {"status": "ready" if ok else "not ready", "spooled": len(voice.outbox.spool.pending())}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(voice.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


@dataclass(frozen=True)
class _Spoken:
    """Today's coverage for a normal request, plus the billable emergency offer when there is one."""

    coverage: Coverage
    offer: str | None

    @property
    def in_hours(self) -> bool:
        return self.coverage.in_hours

    @property
    def hours_text(self) -> str:
        return self.coverage.hours_text

    @property
    def billable_fee(self) -> str | None:
        return self.offer


async def _sms(voice: Voice, p: Params) -> None:
    sid = p.get("MessageSid") or p.get("SmsSid", "")
    text = p.get("Body", "")
    phone = parse.e164(p.get("From", ""), voice.cfg.region) or p.get("From", "")
    now = voice.clock.now()
    opted = parse.opt_keyword(text)
    if opted is not None:
        change = OptOutChanged(
            id=sid, phone=phone, opted_out=opted, received_at=now, keyword=text.strip().upper()
        )
        await voice.outbox.send(s.OPT_OUT_CHANGED, change, msg_id=sid)
        return
    if phone in voice.tech_phones:
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
        await voice.outbox.send(s.TECH_REPLIED, replied, msg_id=sid)
        return
    caller = voice.caller(p.get("From", ""))
    attachments = tuple(
        Attachment(
            filename=url.rstrip("/").rsplit("/", 1)[-1] or f"media{i}",
            content_type=p.get(f"MediaContentType{i}", "application/octet-stream"),
            size=0,  # unknown until fetched: Twilio only sends the URL
            object_name=url,
        )
        for i in range(_int(p.get("NumMedia", "0")) or 0)
        if (url := p.get(f"MediaUrl{i}", ""))
    )
    keyword = parse.emergency_hit(text, voice.policy.emergency_keywords)
    hints = (f"keyword:{keyword}",) if keyword else ()
    first_line = text.strip().splitlines()[0][:80] if text.strip() else "Picture message"
    req = ServiceRequest(
        id=sid,
        channel="sms",
        received_at=now,
        sender=Sender(phone=caller.phone or phone, name=caller.name),
        # A Messaging Service may deliver from any number in its pool: record which one was used.
        recipient=p.get("To") or p.get("MessagingServiceSid", ""),
        subject=first_line,
        body=text,
        full_text=text,
        attachments=attachments,
        priority_hint="emergency" if keyword else "normal",
        hints=hints,
    )
    await voice.outbox.send(s.request_subject("sms"), req, msg_id=sid)
    voice.metrics.requests_received.labels("sms").inc()


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


async def main(cfg: VoiceConfig, *, stop: asyncio.Event) -> None:
    policy = load_policy(cfg.policy)
    outbox = Outbox(Spool(cfg.spool_dir), cfg.publish_timeout)
    voice = Voice(cfg=cfg, policy=policy, outbox=outbox, words=wording.load(cfg.templates or None))
    server = HttpServer(build_app(voice), cfg.host, cfg.port)
    # Callers must hear the menu even while NATS is away: serve first, connect in the background.
    await server.start()
    log.info("listening", extra={"url": f"http://{cfg.host}:{server.port}"})

    async def connect() -> None:
        bus = await Bus.connect(cfg.bus, "intake_voice", stop=stop)
        await bus.ensure_topology()
        outbox.bus = bus

    connector = asyncio.create_task(connect())
    flusher = asyncio.create_task(outbox.run(stop, cfg.respool_interval))
    try:
        await stop.wait()
    finally:
        await server.stop()
        connector.cancel()
        with contextlib.suppress(BaseException):
            await connector
        await flusher
        if outbox.bus is not None:
            await outbox.bus.close()
