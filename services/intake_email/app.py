"""The SMTP intake: accept support mail, store it raw, publish one ServiceRequest, only then say 250."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.http import HttpServer, health_app
from services.common.metrics import Metrics, follow_storage
from services.contracts import subjects as s
from services.contracts.requests import Attachment, Sender, SenderAuth, ServiceRequest, ThreadKeys
from services.intake_email import authentication, dmarc, limits
from services.intake_email.admission import (
    RateWindow,
    SessionSlots,
    is_postmaster,
    is_support_recipient,
    share,
)
from services.intake_email.attachments import locate
from services.intake_email.config import SmtpConfig, check
from services.intake_email.connection import Connection, hook_names
from services.intake_email.mail import ParsedAttachment, ParsedEmail, parse
from services.intake_email.workers import Workers, ensure_port_free

log = logging.getLogger(__name__)
T = TypeVar("T")

# Messages up to this size are parsed on the event loop, bigger ones in a worker thread (see _parse).
INLINE_PARSE_MAX = 64 * 1024
TEMPFAIL = "451 4.3.0 Temporarily unable to accept, try again"
# A request carrying its raw mail stays under half the 1 MiB a NATS message may carry by default.
REQUEST_BUDGET = 512 * 1024


class Intake:
    """The aiosmtpd handler: admission checks per command, store-and-publish on DATA."""

    def __dir__(self) -> list[str]:
        # aiosmtpd reads the handler's hooks from dir() per connection, as it does Connection's.
        return hook_names(type(self))

    def __init__(self, cfg: SmtpConfig, bus: Bus, clock: Clock) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        # Limits hold for the whole intake: with several worker processes each enforces its share.
        self.rate = RateWindow(share(cfg.rate_per_minute, cfg.workers))
        self.slots = SessionSlots(
            share(cfg.max_sessions, cfg.workers), share(cfg.max_sessions_per_ip, cfg.workers)
        )
        self.accepted = 0
        self.tempfailed = 0
        self.metrics = Metrics()
        self.encoder = msgspec.json.Encoder()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        peer = session.peer
        client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self.rate.allow(client, time.monotonic()):
            return "450 4.7.1 Too many messages, slow down"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        ours = self.cfg.support_addresses, self.cfg.support_domains
        if not is_support_recipient(address, *ours) and not is_postmaster(address, *ours):
            return "550 5.7.1 Relaying denied"
        if len(envelope.rcpt_tos) >= self.cfg.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode("utf-8", "surrogateescape")
        auth = await self.authenticate(raw, session, envelope)
        try:
            # A deadline on this task rather than wait_for's: no second task per message.
            async with asyncio.timeout(self.cfg.publish_timeout):
                request_id = await self.accept(raw, envelope, auth)
        except Exception as exc:
            # Nothing was acknowledged: the client keeps the mail and retries, so nothing is lost.
            self.tempfailed += 1
            log.warning("tempfail", extra={"error": repr(exc)})
            return TEMPFAIL
        self.accepted += 1
        self.metrics.requests_received.labels("email").inc()
        return f"250 2.0.0 OK {request_id}"

    async def authenticate(self, raw: bytes, session: Session, envelope: Envelope) -> SenderAuth:
        """Who vouches for the From address (see SmtpConfig.sender_auth); never raises."""
        mode = self.cfg.sender_auth
        peer = str(session.peer[0]) if isinstance(session.peer, tuple) else str(session.peer)
        if mode == "off":
            return SenderAuth(verdict="unchecked", method="off", reason="sender authentication off")
        if mode == "upstream":
            if not authentication.from_relay(peer, self.cfg.upstream_relays):
                # Anyone can write an Authentication-Results header: only the relay's own count.
                return authentication.unauthenticated("upstream", f"{peer} is not an upstream relay")
            return authentication.upstream(authentication.headers(raw), self.cfg.authserv_id)
        check = functools.partial(
            dmarc.check,
            raw,
            ip=peer,
            helo=str(session.host_name or ""),
            mail_from=str(envelope.mail_from or ""),
            timeout=self.cfg.dns_timeout,
        )
        try:
            # SPF may take up to ten lookups; dnspython bounds each, this bounds them all.
            return await asyncio.wait_for(asyncio.to_thread(check), self.cfg.dns_timeout * 3)
        except Exception as exc:
            log.warning("sender authentication failed", extra={"error": repr(exc)})
            return authentication.unauthenticated("dmarc", f"not checked ({type(exc).__name__})")

    async def accept(self, raw: bytes, envelope: Envelope, auth: SenderAuth) -> str:
        """Store what the request cannot carry, then publish; returns the request id once acked."""
        timeout = self.cfg.publish_timeout
        # A small mail travels whole inside its request: one publish and its ack, where storing it as an
        # object cost three round trips (existence lookup, chunk, meta) in the intake and nats-server.
        # A bigger one is uploaded first; the upload does not need the parse, so the two overlap.
        small = len(raw) <= self.cfg.max_inline_raw
        raw_upload = None if small else asyncio.create_task(self._store(raw, "raw"))
        try:
            parsed = await self._parse(raw)
            # An attachment is a span of the raw original, which travels or is stored anyway: its bytes
            # once, not twice. Only one the raw does not hold as is (a repaired body) is stored apart.
            spans = await self._off_loop(raw, _spans, raw, parsed.attachments)
            apart = [a for a, span in zip(parsed.attachments, spans, strict=True) if span is None]
            # Every object is stored at once; their acks are awaited together.
            stored = await asyncio.gather(*(self._store(a.data, "att") for a in apart))
        finally:
            raw_ref = await raw_upload if raw_upload is not None else None
        text_ref = None
        if len(parsed.full_text) > self.cfg.max_inline_text:
            # Too big to travel inside the request: the whole text is an object, the request an excerpt.
            text_ref = await self._store(parsed.full_text.encode("utf-8", "surrogatepass"), "text")
        inline = raw if raw_ref is None else None
        listed = _listing(parsed.attachments, spans, raw_ref, stored)
        request = self.build(parsed, envelope, raw_ref, listed, auth=auth, text_ref=text_ref, raw=inline)
        payload = self.encoder.encode(request)
        if inline is not None and len(payload) > REQUEST_BUDGET:
            # Only text that JSON escapes heavily (control characters) gets here: the request must stay
            # well under the largest message NATS takes, so this raw is stored after all.
            raw_ref = await self._store(raw, "raw")
            listed = _listing(parsed.attachments, spans, raw_ref, stored)
            request = self.build(parsed, envelope, raw_ref, listed, auth=auth, text_ref=text_ref)
            payload = self.encoder.encode(request)
        # Only now, with every object acked, may the request exist: the router must never see a
        # request whose raw or attachments are not stored. Nats-Msg-Id = request id: a resend of the
        # same message is acknowledged but stored once.
        await self.bus.publish_bytes(s.request_subject("email"), payload, msg_id=request.id, timeout=timeout)
        return request.id

    async def _store(self, data: bytes, prefix: str) -> str:
        return await self.bus.put_object(data, prefix=prefix, timeout=self.cfg.publish_timeout)

    async def _parse(self, raw: bytes) -> ParsedEmail:
        secret = self.cfg.thread_secret.reveal().encode()
        return await self._off_loop(
            raw, parse, raw, secret=secret, emergency_keywords=self.cfg.emergency_keywords
        )

    @staticmethod
    async def _off_loop(raw: bytes, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if len(raw) <= INLINE_PARSE_MAX:
            # A usual support mail parses in a few milliseconds. Under the GIL a thread adds no
            # parallelism, only a hand-off that cost about 1 ms of CPU per message in the benchmark.
            return work(*args, **kwargs)
        # A big message can take seconds to parse: keep it off the loop so other sessions keep moving.
        return await asyncio.to_thread(work, *args, **kwargs)

    def build(
        self,
        parsed: ParsedEmail,
        envelope: Envelope,
        raw_ref: str | None,
        attachments: tuple[Attachment, ...],
        *,
        auth: SenderAuth,
        text_ref: str | None = None,
        raw: bytes | None = None,
    ) -> ServiceRequest:
        sender_email = parsed.sender_email
        if sender_email is None and envelope.mail_from and "@" in envelope.mail_from:
            sender_email = envelope.mail_from.strip("<>").lower()
        hints = parsed.hints + (("token:forged",) if parsed.token_forged else ())
        if len(attachments) > limits.MAX_ATTACHMENTS:
            hints += (f"attachments:{len(attachments) - limits.MAX_ATTACHMENTS} more in the raw message",)
        limit = self.cfg.max_inline_text
        ours = self.cfg.support_addresses, self.cfg.support_domains
        # Support mail copied to postmaster is support mail; only mail for postmaster alone goes to ops.
        support = [r for r in envelope.rcpt_tos if is_support_recipient(r, *ours)]
        recipients = support or list(envelope.rcpt_tos)
        return ServiceRequest(
            id=parsed.request_id,
            channel="email",
            received_at=self.clock.now(),
            sender=Sender(email=sender_email, name=limits.excerpt(parsed.sender_name or "", 200) or None),
            recipient=recipients[0] if recipients else "",
            subject=limits.excerpt(parsed.subject, limits.MAX_SUBJECT),
            body=limits.excerpt(parsed.body, limit),
            full_text=limits.excerpt(parsed.full_text, limit),
            attachments=attachments[: limits.MAX_ATTACHMENTS],
            thread=ThreadKeys(
                message_id=parsed.message_id,
                in_reply_to=limits.newest(parsed.in_reply_to),
                references=limits.newest(parsed.references),
                ticket_token=parsed.ticket_token,
                token_signed=parsed.token_signed,
                references_ours=parsed.references_ours,
            ),
            priority_hint=parsed.priority_hint,
            hints=hints,
            nature=parsed.nature,
            raw_ref=raw_ref,
            sender_auth=auth,
            text_ref=text_ref,
            raw=raw,
        )


def _listing(
    items: tuple[ParsedAttachment, ...],
    spans: list[tuple[int, int] | None],
    raw_ref: str | None,
    stored: list[str],
) -> tuple[Attachment, ...]:
    """The request's attachments: spans of the raw original (stored as raw_ref, or in the request when
    None: an empty object_name), and the ones stored apart, in order, under the names in `stored`."""
    apart = iter(stored)
    return tuple(
        Attachment(
            filename=item.filename,
            content_type=item.content_type,
            size=len(item.data),
            object_name=(raw_ref or "") if span else next(apart),
            content_id=item.content_id,
            inline=item.inline,
            offset=span[0] if span else None,
            length=span[1] if span else 0,
            transfer_encoding=item.transfer_encoding if span else "",
        )
        for item, span in zip(items, spans, strict=True)
    )


def _spans(raw: bytes, items: tuple[ParsedAttachment, ...]) -> list[tuple[int, int] | None]:
    found: list[tuple[int, int] | None] = []
    start = 0
    for item in items:
        span = locate(raw, item.encoded, item.transfer_encoding, item.data, start)
        found.append(span)
        start = span[0] + span[1] if span else start
    return found


def _tls_context(cfg: SmtpConfig) -> ssl.SSLContext | None:
    if not (cfg.tls_cert and cfg.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return context


async def main(
    cfg: SmtpConfig,
    *,
    stop: asyncio.Event,
    clock: Clock | None = None,
    listening: asyncio.Event | None = None,
) -> None:
    """Serve SMTP until `stop`; `listening` is set once the SMTP socket accepts connections."""
    check(cfg)
    if cfg.sender_auth == "off":
        log.warning("sender authentication is OFF: every From address is believed (development only)")
    elif cfg.sender_auth == "dmarc":
        dmarc.use_resolvers(cfg.dns_servers, cfg.dns_timeout)
    bus = await Bus.connect(cfg.bus, "intake_email", stop=stop)
    http: HttpServer | None = None
    server: asyncio.Server | None = None
    # The primary starts the other workers once it listens itself; a worker starts none.
    workers = Workers(cfg, main) if cfg.worker == 0 and cfg.workers > 1 else None
    watching: asyncio.Task[None] | None = None
    try:
        await bus.ensure_topology(stop=stop)
        intake = Intake(cfg, bus, clock or SystemClock())
        if cfg.worker == 0:
            # Health and metrics are the primary's alone: one HTTP port, whatever the worker count.
            follow_storage(intake.metrics.registry, bus)
            http = HttpServer(
                health_app(
                    lambda: bus.ready,
                    lambda: {
                        "sessions": intake.slots.count,
                        "accepted": intake.accepted,
                        "tempfailed": intake.tempfailed,
                        "workers": 1 + (workers.listening if workers else 0),
                    },
                    intake.metrics.registry,
                ),
                cfg.host,
                cfg.http_port,
            )
            await http.start()
        if workers is not None:
            ensure_port_free(cfg.host, cfg.port)
        tls = _tls_context(cfg)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(
                intake,
                data_size_limit=cfg.max_size,
                hostname=cfg.hostname,
                tls_context=tls,
                enable_SMTPUTF8=True,
                # aiosmtpd drops a session idle this long between commands or DATA lines (421).
                timeout=cfg.idle_timeout,
                loop=loop,
            ),
            cfg.host,
            cfg.port,
            # Every worker binds the same port; the kernel spreads new connections over them.
            reuse_port=cfg.workers > 1,
        )
        log.info("smtp listening", extra={"host": cfg.host, "port": cfg.port, "worker": cfg.worker})
        if workers is not None:
            workers.start()
            watching = asyncio.create_task(workers.watch(stop))
        if listening is not None:
            listening.set()
        await stop.wait()
    finally:
        if workers is not None:
            await workers.stop()
        if watching is not None:
            await watching
        if server is not None:
            server.close()
            await server.wait_closed()
        if http is not None:
            await http.stop()
        await bus.close()
