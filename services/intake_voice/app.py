"""intake_voice: Twilio call, IVR, voicemail and SMS webhooks turned into events on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.http import HttpServer, health_app
from services.common.metrics import follow_storage
from services.contracts import subjects as s
from services.contracts.events import RequestAmended, SmsStatusReported
from services.intake_voice import form, menu, parse
from services.intake_voice.config import VoiceConfig
from services.intake_voice.lanes import (
    BodyTooLarge,
    DocsOnDemand,
    Endpoint,
    WebhookLane,
    capped_body,
    documented,
)
from services.intake_voice.outbox import Outbox
from services.intake_voice.signature import signed_url, valid
from services.intake_voice.spool import Spool, Unpublishable
from services.intake_voice.voice import Params, Voice
from services.intake_voice.workers import WebhookServer, Workers, listening_socket, watch_parent
from services.policy.decide import oncall_at
from services.policy.load import load_policy
from services.wording import catalog as wording

# Voice lives in voice.py; it is re-exported because tests and the in-process stack build it from here.
__all__ = ["Voice", "build_app", "internal_app", "main"]

log = logging.getLogger(__name__)
XML = "application/xml"
Handler = Callable[[Params], Awaitable[str]]

_DAY_SECONDS = 86_400  # no recording outlasts a day (Twilio stops calls at 24 hours)
_MAX_ERROR_CODE = 99_999  # Twilio error codes have five digits
_CHOICE_DIGIT = {"emergency": "1", "new": "2", "existing": "3", "billable": "9"}


def _xml(body: str) -> Response:
    return Response(content=body, media_type=XML)


def _refuse(status: int, text: str, **headers: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain", headers=headers)


def build_app(voice: Voice) -> ASGIApp:
    cfg = voice.cfg

    async def signed(request: Request) -> Params | None:
        """The form params when X-Twilio-Signature matches the URL Twilio called, else None."""
        body = (await capped_body(request, form.MAX_BODY_BYTES)).decode("utf-8", "replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        # Raw path and query from the ASGI scope: building Starlette's URL object costs more than the check.
        path: str = request.scope["path"]
        query = request.scope["query_string"].decode("latin-1")
        url = signed_url(cfg.public_url, path, query, request.headers, trust_forwarded=cfg.trust_forwarded)
        ok = valid(
            voice.validator,
            url,
            pairs,
            request.headers.get("x-twilio-signature", ""),
            request.headers.get("x-twilio-webhooks-signature-settings", ""),
        )
        if not ok:
            log.warning("rejected unsigned webhook", extra={"url": path})
            return None
        params = dict(pairs)
        params.update(parse_qsl(query, keep_blank_values=True))  # our own state, signed with the URL
        return params

    endpoints: dict[str, Endpoint] = {}
    # Fixed answers rendered once: TwiML rendering is a measurable share of a webhook's CPU.
    silence, farewell = menu.empty(), voice.script.goodbye()

    def webhook(path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                try:
                    params = await signed(request)
                except BodyTooLarge:
                    voice.metrics.messages_refused.labels("body_too_large").inc()
                    # Close the connection: the rest of the body is never read, not even to drain it.
                    body = f"body over {form.MAX_BODY_BYTES} bytes"
                    return _refuse(413, body, Connection="close")
                if params is None:
                    voice.metrics.messages_refused.labels("invalid_signature").inc()
                    return _refuse(403, "invalid signature")
                try:
                    return _xml(await handler(params))
                except form.Malformed as exc:
                    # A signed request with a field we cannot use: say which, publish nothing, never a 500.
                    voice.metrics.messages_refused.labels("malformed").inc()
                    log.warning("malformed webhook", extra={"url": path, "field": exc.field})
                    return _refuse(400, str(exc))
                except Unpublishable as exc:
                    voice.metrics.messages_refused.labels("event_too_large").inc()
                    log.warning("unpublishable webhook", extra={"url": path, "error": str(exc)})
                    return _refuse(413, "event too large to publish")

            endpoint.__name__ = handler.__name__
            endpoints[path] = endpoint
            return handler

        return register

    @webhook("/twilio/voice")
    async def incoming(p: Params) -> str:
        caller = voice.caller(p.get("From", ""))
        name = caller.name or (caller.client.name if caller.client else None)
        return voice.greeting(name, caller.client, attempt=1)

    @webhook("/twilio/voice/menu")
    async def choose(p: Params) -> str:
        caller = voice.caller(p.get("From", ""))
        attempt = form.bounded_int(p, "attempt", 1, menu.MAX_MENU_ATTEMPTS) or 1
        choice = parse.ivr_choice(p.get("Digits", ""), p.get("SpeechResult", ""))
        emergency_cov = voice.coverage(caller.client, emergency=True)
        if choice == "billable" and emergency_cov.offer is None:
            choice = None  # 9 was never offered to this caller
        if choice is None:
            if attempt < menu.MAX_MENU_ATTEMPTS:
                return voice.greeting(None, caller.client, attempt=attempt + 1)
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
            tech = voice.policy.tech(oncall_at(voice.policy, voice.clock.now()))
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
            return farewell
        lead = voice.script.line("tech_unreachable")
        return voice.script.voicemail(lead, {"choice": p.get("choice", "")})

    @webhook("/twilio/voice/recorded")
    async def recorded(p: Params) -> str:
        return farewell

    def ready(p: Params, status: str) -> bool:
        """A recording Twilio says is done (`status` absent counts as done: older callbacks omit it)."""
        return form.optional_sid(p, "RecordingSid") is not None and p.get(status, "completed") == "completed"

    async def amend(
        p: Params, kind: str, *, recording_seconds: int | None = None, transcription: str | None = None
    ) -> None:
        """Add a voicemail's recording or its transcription to the call's request (one id per kind)."""
        amended = RequestAmended(
            id=f"{form.sid(p, 'RecordingSid')}:{kind}",
            request_id=form.sid(p, "CallSid"),
            received_at=voice.clock.now(),
            recording_url=form.url(p, "RecordingUrl"),
            recording_seconds=recording_seconds,
            transcription=transcription,
        )
        await voice.outbox.send(s.REQUEST_AMENDED, amended, msg_id=amended.id)

    @webhook("/twilio/voice/recording")
    async def recording(p: Params) -> str:
        if ready(p, "RecordingStatus"):
            seconds = form.bounded_int(p, "RecordingDuration", 0, _DAY_SECONDS)
            await amend(p, "recording", recording_seconds=seconds)
        return silence

    @webhook("/twilio/voice/transcription")
    async def transcription(p: Params) -> str:
        if ready(p, "TranscriptionStatus"):
            await amend(p, "transcription", transcription=p.get("TranscriptionText", ""))
        return silence

    @webhook("/twilio/voice/status")
    async def status(p: Params) -> str:
        call = form.optional_sid(p, "CallSid")
        if call and p.get("CallStatus") == "completed" and not voice.outbox.holds(call):
            # Same msg id as any request already published for this call: JetStream drops the
            # duplicate, so "Missed call" is stored only when the caller never got that far.
            caller = voice.caller(p.get("From", ""))
            await voice.publish_call(voice.request(p, caller, subject="Missed call", hints=("missed_call",)))
        return silence

    @webhook("/twilio/sms")
    async def sms(p: Params) -> str:
        await voice.receive_sms(p)
        return silence

    @webhook("/twilio/sms/status")
    async def sms_status(p: Params) -> str:
        status = p.get("MessageStatus") or p.get("SmsStatus", "")
        # Only final states matter to the notifier; queued/sent are progress, answered and dropped.
        if status in ("delivered", "undelivered", "failed"):
            sid = form.sid(p, "MessageSid", "SmsSid")
            code = form.bounded_int(p, "ErrorCode", 0, _MAX_ERROR_CODE)
            report = SmsStatusReported(
                id=f"{sid}.{status}",
                message_sid=sid,
                status=status,  # type: ignore[arg-type]
                to=parse.e164(p.get("To", ""), voice.cfg.region) or form.caller_label(p.get("To", "")),
                reported_at=voice.clock.now(),
                key=p.get("key", ""),
                error_code=code,
            )
            # Twilio retries callbacks it could not deliver; the msg id makes a retry a no-op.
            await voice.outbox.send(s.SMS_STATUS_REPORTED, report, msg_id=report.id)
        return silence

    # Probes for a proxy or orchestrator in front of the public port say only up/ready; the details
    # and /metrics are on the internal port (internal_app).
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ok = voice.ready()
        return JSONResponse({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    probes: dict[str, Endpoint] = {"/healthz": healthz, "/readyz": readyz}
    routes = [Route(path, probe, methods=["GET"]) for path, probe in probes.items()]
    routes += [Route(path, endpoint, methods=["POST"]) for path, endpoint in endpoints.items()]
    app: ASGIApp = Starlette(routes=routes)
    # API docs describe every route to whoever asks: only on a developer's machine.
    if cfg.environment == "development":
        app = DocsOnDemand(app, lambda: documented(endpoints, probes))
    return WebhookLane(app, endpoints)


def internal_app(voice: Voice) -> Any:
    """/healthz, /readyz (with spool counts) and /metrics for the internal port."""
    spool = voice.outbox.spool
    details = lambda: {"spooled": spool.count(), "spool_rejected": spool.rejected}  # noqa: E731
    return health_app(voice.ready, details, voice.metrics.registry)


async def main(cfg: VoiceConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    policy = load_policy(cfg.policy)
    outbox = Outbox(Spool(cfg.spool_dir), cfg.publish_timeout)
    words = wording.load(cfg.templates or None)
    voice = Voice(cfg=cfg, policy=policy, outbox=outbox, clock=clock or SystemClock(), words=words)
    internal = HttpServer(internal_app(voice), cfg.host, cfg.http_port)
    server = WebhookServer(build_app(voice), listening_socket(cfg.host, cfg.port, first=cfg.worker == 0))
    # Callers must hear the menu even while NATS is away: serve first, connect in the background.
    await internal.start()
    try:
        await server.start()
    except BaseException:
        await internal.stop()
        raise
    log.info(
        "listening",
        extra={
            "url": f"http://{cfg.host}:{server.port}",
            "internal": f"http://{cfg.host}:{internal.port}",
            "worker": cfg.worker,
        },
    )

    async def connect() -> None:
        bus = await Bus.connect(cfg.bus, "intake_voice", stop=stop)
        await bus.ensure_topology(stop=stop)
        follow_storage(voice.metrics.registry, bus)
        outbox.bus = bus

    # What start-up built (modules, policy, templates, the app) lives as long as the process. Frozen,
    # the collector stops scanning it: a full collection had paused every request for as long as it
    # took to walk all of it, the webhooks' p99 (bench/webhooks.py). The start-up garbage frozen with
    # it is a few dozen objects; no gc.collect() first, which would cost a test process that runs
    # main() many times a full walk of its heap each time (and unfreeze at stop leaks nothing there).
    gc.freeze()
    connector = asyncio.create_task(connect())
    flusher = asyncio.create_task(outbox.run(stop, cfg.respool_interval))
    # Worker 0 starts and keeps the others (each its own NATS connection; the spool folder is shared,
    # files claimed by lock); the others stop when worker 0 is gone.
    keeper: asyncio.Task[None] | None = None
    if cfg.worker == 0 and cfg.workers > 1:
        keeper = asyncio.create_task(Workers(cfg, server.port).run(stop))
    elif cfg.worker > 0:
        keeper = asyncio.create_task(watch_parent(stop))
    try:
        await stop.wait()
    finally:
        await server.stop()
        await internal.stop()
        connector.cancel()
        with contextlib.suppress(BaseException):
            await connector
        await flusher
        if keeper is not None:
            await keeper
        if outbox.bus is not None:
            await outbox.bus.close()
        gc.unfreeze()
