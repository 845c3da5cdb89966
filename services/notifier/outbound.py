"""The sender worker: one idempotency key, at most one SMS or email, ever; retries and fallbacks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

import aiosmtplib
import msgspec
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus, Delivery, Transient
from services.common.clock import Clock
from services.common.metrics import Metrics
from services.contracts import SendEmail, SendSms, TimelineEntry, threading
from services.contracts import subjects as s
from services.notifier import sanitize, suppression
from services.notifier.config import NotifierConfig
from services.notifier.internal import DELIVERY_FAILED, DeliveryFailed

log = logging.getLogger(__name__)

# Work handed to a person must reach them; the rate window guards against answering loops instead.
RATE_EXEMPT = frozenset({"tech_dispatch", "tech_escalation", "tech_relay", "ops_alert"})

# Twilio errors that no retry will fix: invalid number, unsubscribed, not a mobile, unreachable.
PERMANENT = frozenset({21211, 21610, 21614, 30003})

State = Literal["sending", "sent", "failed", "retry", "suppressed"]
Outbound = SendSms | SendEmail


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    state: State
    at: datetime
    channel: Literal["sms", "email"]
    sid: str | None = None
    error: str = ""
    attempts: int = 0


class OptOut(msgspec.Struct, frozen=True, kw_only=True):
    opted_out: bool
    at: datetime


def outbound_key(key: str) -> str:
    return s.kv_key(f"out.{key}")


def retryable(exc: Exception) -> bool:
    if isinstance(exc, TwilioRestException):
        return bool(exc.status == 429 or exc.status >= 500)
    return isinstance(exc, (OSError, asyncio.TimeoutError, aiosmtplib.SMTPException))


class Sender:
    def __init__(self, bus: Bus, cfg: NotifierConfig, clock: Clock, twilio: TwilioClient) -> None:
        self.metrics = Metrics()
        self.bus = bus
        self.cfg = cfg
        self.clock = clock
        self.twilio = twilio
        self.secret = cfg.thread_secret.reveal().encode()
        self.sent_sms = 0
        self.sent_email = 0

    async def handle(self, message: Outbound, delivery: Delivery) -> None:
        key = outbound_key(message.key)
        channel: Literal["sms", "email"] = "sms" if isinstance(message, SendSms) else "email"
        now = self.clock.now()
        claimed = False

        def claim(current: bytes | None) -> bytes | None:
            nonlocal claimed
            claimed = False
            if current is not None:
                record = msgspec.json.decode(current, type=DeliveryRecord)
                # "sending" left behind means a crash mid-request: Twilio may have sent it, and
                # at-most-once beats a duplicate SMS. Only an explicit "retry" is sent again.
                if record.state != "retry":
                    return None
            claimed = True
            return msgspec.json.encode(DeliveryRecord(state="sending", at=now, channel=channel))

        await self.bus.kv_update(s.KV_OUTBOUND, key, claim)
        if not claimed:
            return
        if message.purpose not in RATE_EXEMPT and not await self._admitted(message.to, now):
            await self._record(key, DeliveryRecord(state="suppressed", at=now, channel=channel, error="rate"))
            await self._timeline(
                message, "message_failed", f"{channel} to {message.to} suppressed: rate limit"
            )
            return
        if isinstance(message, SendSms) and await self._opted_out(message.to):
            await self._permanent(message, key, 21610, "recipient opted out")
            return
        attempts = max(1, self.cfg.send_attempts)
        for attempt in range(1, attempts + 1):
            try:
                sid = await (self._sms(message) if isinstance(message, SendSms) else self._email(message))
            except TwilioRestException as exc:
                if exc.code in PERMANENT or not retryable(exc):
                    await self._permanent(message, key, int(exc.code or 0), exc.msg)
                    return
                error = f"{exc.status}/{exc.code}"
            except Exception as exc:
                if not retryable(exc):
                    raise
                error = repr(exc)
            else:
                record = DeliveryRecord(
                    state="sent", at=self.clock.now(), channel=channel, sid=sid, attempts=attempt
                )
                await self._record(key, record)
                self.metrics.outbound_sent.labels(channel).inc()
                log.info(
                    f"{channel} sent",
                    extra={"ticket": message.ticket_number, "client": message.client_id, "key": message.key},
                )
                return
            log.warning("send failed, retrying", extra={"key": message.key, "error": error, "count": attempt})
            if attempt < attempts:
                await asyncio.sleep(min(self.cfg.retry_base * 2 ** (attempt - 1), 5.0))
        # Nothing was sent: let the next delivery try again (JetStream backoff, then dead letter).
        await self._record(
            key, DeliveryRecord(state="retry", at=self.clock.now(), channel=channel, error=error)
        )
        raise Transient(f"{message.key}: {error}")

    async def _sms(self, message: SendSms) -> str:
        tw = self.cfg.twilio
        options: dict[str, str] = {"to": message.to, "body": sanitize.sms(message.body)}
        if tw.messaging_service_sid:
            options["messaging_service_sid"] = tw.messaging_service_sid
        else:
            options["from_"] = tw.from_
        created = await self.twilio.messages.create_async(**options)
        self.sent_sms += 1
        return str(created.sid)

    async def _email(self, message: SendEmail) -> str:
        mail = EmailMessage()
        subject = sanitize.header(message.subject, 250)
        if message.ticket_number:
            token = threading.subject_token(message.ticket_number, self.secret)
            if token not in subject:
                subject = f"{subject} {token}"
        # The nonce comes from the key so a retried send carries the same Message-ID.
        nonce = hashlib.sha256(message.key.encode()).hexdigest()[:16]
        number = message.ticket_number or "SR-0"
        msg_id = threading.message_id(number, nonce, self.cfg.mail_domain, self.secret)
        mail["From"] = self.cfg.mail_from
        mail["To"] = sanitize.header(message.to, 320)
        mail["Subject"] = subject
        mail["Message-ID"] = msg_id
        mail["Date"] = format_datetime(self.clock.now())
        # RFC 3834: mark ourselves automatic so well-behaved responders do not answer us.
        mail["Auto-Submitted"] = "auto-replied"
        if message.in_reply_to:
            mail["In-Reply-To"] = sanitize.header(message.in_reply_to, 500)
        refs = [*message.references, *([message.in_reply_to] if message.in_reply_to else [])]
        if refs:
            mail["References"] = sanitize.header(" ".join(dict.fromkeys(refs)), 2000)
        mail.set_content(sanitize.strip_controls(message.body))
        await aiosmtplib.send(mail, hostname=self.cfg.relay_host, port=self.cfg.relay_port, timeout=10)
        self.sent_email += 1
        return msg_id

    async def _permanent(self, message: Outbound, key: str, code: int, why: str) -> None:
        now = self.clock.now()
        channel: Literal["sms", "email"] = "sms" if isinstance(message, SendSms) else "email"
        await self._record(
            key, DeliveryRecord(state="failed", at=now, channel=channel, error=f"{code} {why}")
        )
        self.metrics.outbound_failed.labels(channel, str(code)).inc()
        await self._timeline(
            message, "message_failed", f"{channel} to {message.to} failed permanently ({code})"
        )
        if not isinstance(message, SendSms):
            return
        if message.fallback_email:
            fallback = SendEmail(
                key=f"{message.key}.email",
                to=message.fallback_email,
                subject=f"Update on {message.ticket_number}"
                if message.ticket_number
                else "Update on your request",
                body=message.body,
                purpose=message.purpose,
                created_at=now,
                client_id=message.client_id,
                ticket_number=message.ticket_number,
            )
            await self.bus.publish(s.OUTBOX_EMAIL, fallback, msg_id=fallback.key)
        elif message.purpose.startswith("tech_") and message.ticket_number:
            # A tech we cannot text cannot accept: the notifier escalates at once.
            failed = DeliveryFailed(
                id=f"failed.{message.key}",
                key=message.key,
                to=message.to,
                purpose=message.purpose,
                error_code=code,
                at=now,
                ticket_number=message.ticket_number,
                client_id=message.client_id,
            )
            await self.bus.publish(s.notify_subject(DELIVERY_FAILED), failed, msg_id=failed.id)

    async def _record(self, key: str, record: DeliveryRecord) -> None:
        kv = await self.bus.kv(s.KV_OUTBOUND)
        await kv.put(key, msgspec.json.encode(record))

    async def _admitted(self, to: str, now: datetime) -> bool:
        allowed = True

        def bump(current: bytes | None) -> bytes | None:
            nonlocal allowed
            window = (
                msgspec.json.decode(current, type=suppression.RateWindow)
                if current
                else suppression.RateWindow()
            )
            allowed, updated = suppression.admit(window, now)
            return msgspec.json.encode(updated) if allowed else None

        await self.bus.kv_update(s.KV_CONTACTS, s.kv_key(f"rate.{to.lower()}"), bump)
        return allowed

    async def _opted_out(self, phone: str) -> bool:
        value, _ = await self.bus.kv_get(s.KV_CONTACTS, s.kv_key(f"optout.{phone}"))
        return value is not None and msgspec.json.decode(value, type=OptOut).opted_out

    async def _timeline(self, message: Outbound, kind: str, text: str) -> None:
        if not message.client_id:
            return
        entry = TimelineEntry(
            id=f"{kind}.{message.key}",
            at=self.clock.now(),
            client_id=message.client_id,
            kind=kind,  # type: ignore[arg-type]
            text=text,
            service="notifier",
            ticket_number=message.ticket_number,
            actor="system",
        )
        await self.bus.publish(s.timeline_subject(message.client_id), entry, msg_id=entry.id)
