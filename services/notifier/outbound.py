"""The sender worker: one idempotency key, at most one SMS or email, ever; retries and fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import aiosmtplib
import msgspec
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus, Transient
from services.common.clock import Clock
from services.common.consumer import Delivery
from services.common.metrics import Metrics
from services.contracts import SendEmail, SendSms, SmsStatusReported, TimelineEntry, threading
from services.contracts import subjects as s
from services.notifier import suppression
from services.notifier.config import NotifierConfig
from services.notifier.families import RATE
from services.notifier.internal import DELIVERY_FAILED, DeliveryFailed
from services.state.contacts import ContactState
from services.wording import sanitize

log = logging.getLogger(__name__)

# Work handed to a person must reach them; the rate window guards against answering loops instead.
RATE_EXEMPT = frozenset({"tech_dispatch", "tech_escalation", "tech_relay", "ops_alert"})

# Twilio errors that no retry will fix: invalid number, unsubscribed, not a mobile, unreachable.
# The 300xx ones normally arrive later, through the status callback (see Sender.reported).
PERMANENT = frozenset({21211, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006, 30007})

# How far back to look in Twilio's message list for a send whose outcome we lost; covers clock
# skew between us and Twilio and the time the lost request was in flight.
RECONCILE_WINDOW = timedelta(minutes=2)

State = Literal["sending", "sent", "delivered", "failed", "retry", "suppressed"]
Outbound = SendSms | SendEmail


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    state: State
    at: datetime
    channel: Literal["sms", "email"]
    sid: str | None = None
    error: str = ""
    attempts: int = 0
    # Wall-clock seconds when a sender took the message: "is that request still in flight" is a
    # question about real time, not about the injected business clock.
    claimed: float = 0.0
    claim: str = ""  # which sender holds it: a sender that finds another's claim here stops
    unsure: bool = False  # "retry" after an attempt whose outcome we never heard
    error_code: int = 0
    # The command itself, so a late carrier failure (status callback) can still fall back.
    message: SendSms | SendEmail | None = None


_delivery_record = msgspec.json.Decoder(DeliveryRecord)


def outbound_key(key: str) -> str:
    return s.kv_key(f"out.{key}")


def retryable(exc: Exception) -> bool:
    if isinstance(exc, TwilioRestException):
        return bool(exc.status == 429 or exc.status >= 500)
    # aiohttp's disconnects and payload errors are not OSErrors, and may come after Twilio acted.
    return isinstance(exc, (OSError, asyncio.TimeoutError, aiosmtplib.SMTPException, aiohttp.ClientError))


class LostClaim(Exception):
    """Another sender took this message over (ours ran past the in-flight window): stop, send nothing."""


class Found(msgspec.Struct, frozen=True):
    sid: str
    status: str
    error_code: int


FAILED_STATUSES = frozenset({"failed", "undelivered"})


@dataclass(frozen=True)
class Job:
    """One delivery's hold on one outbound message."""

    message: Outbound
    key: str  # the delivery record's KV key
    channel: Literal["sms", "email"]
    claim: str  # our claim id on the record
    first_at: datetime  # when the first attempt at this message began


class Sender:
    def __init__(self, bus: Bus, cfg: NotifierConfig, clock: Clock, twilio: TwilioClient) -> None:
        self.metrics = Metrics()
        self.bus = bus
        self.contacts = ContactState(bus)
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
        wall = time.time()
        mine = uuid.uuid4().hex
        outcome: Literal["new", "again", "reconcile", "busy", "done", "refail"] = "done"
        first_at = now
        previous: DeliveryRecord | None = None

        def claim(current: bytes | None) -> bytes | None:
            nonlocal outcome, first_at, previous
            outcome, first_at, previous = "new", now, None
            if current is not None:
                record = previous = _delivery_record.decode(current)
                if record.state == "sending":
                    # Left behind by a sender that crashed, or held by one still working: Twilio may
                    # or may not have the message. A live sender refreshes its claim before every
                    # request, so only a claim older than any request can be taken over; then
                    # Twilio is asked instead of guessing (see _find_sent).
                    if wall - record.claimed < self.cfg.reconcile_after:
                        outcome = "busy"
                        return None
                    outcome, first_at = "reconcile", record.at
                elif record.state == "retry":
                    outcome = "reconcile" if record.unsure else "again"
                    first_at = record.at
                elif record.state == "failed" and record.message is not None:
                    outcome = "refail"  # the fallback may not have gone out before a crash
                    return None
                else:
                    outcome = "done"  # sent, delivered or suppressed: never again
                    return None
            return msgspec.json.encode(
                DeliveryRecord(
                    state="sending", at=first_at, channel=channel, claimed=wall, claim=mine, message=message
                )
            )

        await self.bus.kv_update(s.KV_OUTBOUND, key, claim)
        if outcome == "done":
            return
        if outcome == "busy":
            raise Transient(f"{message.key}: a send may still be in flight")
        if outcome == "refail":
            assert previous is not None and previous.message is not None
            # Publishing the fallback again is harmless: every id it publishes is de-duplicated.
            await self._failed(previous.message, previous.error_code, previous.error)
            return
        job = Job(message=message, key=key, channel=channel, claim=mine, first_at=first_at)
        try:
            await self._deliver(job, now=now, fresh=outcome == "new", unsure=outcome == "reconcile")
        except (Transient, asyncio.CancelledError):
            raise
        except Exception:
            # Whatever broke after the claim, leave a record the next delivery can act on at once,
            # asking Twilio first, instead of a "sending" it must wait out.
            with contextlib.suppress(Exception):
                await self._release(job, "unexpected error", unsure=True)
            raise

    async def _deliver(self, job: Job, *, now: datetime, fresh: bool, unsure: bool) -> None:
        message, key, channel, mine, first_at = job.message, job.key, job.channel, job.claim, job.first_at
        if fresh and message.purpose not in RATE_EXEMPT and not await self._admitted(message.to, now):
            await self._record(key, DeliveryRecord(state="suppressed", at=now, channel=channel, error="rate"))
            await self._timeline(
                message, "message_failed", f"{channel} to {message.to} suppressed: rate limit"
            )
            return
        if isinstance(message, SendSms) and await self._opted_out(message.to):
            await self._permanent(message, key, 21610, "recipient opted out")
            return
        # Before sending again after an outcome we never heard (a crash, a timeout, a 5xx), ask
        # Twilio whether it has the message. Email has no such list: it is sent again with the same
        # Message-ID, which mail systems collapse, so an interrupted email is at-least-once.
        unsure = unsure and isinstance(message, SendSms)
        # The claim was written a moment ago: the first request needs no renewal, later ones do.
        claimed_now = True

        async def renew() -> None:
            nonlocal claimed_now
            if not claimed_now:
                await self._refresh(key, mine)
            claimed_now = False

        error = ""
        attempts = max(1, self.cfg.send_attempts)
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await asyncio.sleep(min(self.cfg.retry_base * 2 ** (attempt - 2), 5.0))
            try:
                if unsure and isinstance(message, SendSms):
                    await renew()
                    found = await self._find_sent(message, first_at)
                    unsure = False
                    if found is not None:
                        log.info("sms found at Twilio after an unanswered send", extra={"key": message.key})
                        if found.status in FAILED_STATUSES:
                            await self._permanent(message, key, found.error_code, f"carrier: {found.status}")
                        else:
                            await self._settle(key, channel, found.sid, attempts=attempt)
                        return
                await renew()
                sid = await (self._sms(message) if isinstance(message, SendSms) else self._email(message))
            except TwilioRestException as exc:
                if exc.code in PERMANENT or not retryable(exc):
                    await self._permanent(message, key, int(exc.code or 0), exc.msg)
                    return
                error = f"{exc.status}/{exc.code}"
                # A 429 was refused at Twilio's edge; a 5xx may come after the message was created.
                unsure = unsure or exc.status != 429
            except TwilioException as exc:
                # The message list could not be read (it raises the base class): still unsure.
                error = repr(exc)
            except LostClaim:
                log.warning("another sender took this message over", extra={"key": message.key})
                return
            except Exception as exc:
                if not retryable(exc):
                    raise
                error = repr(exc)
                unsure = True  # e.g. a read timeout after Twilio accepted the request
            else:
                await self._settle(key, channel, sid, attempts=attempt)
                self.metrics.outbound_sent.labels(channel).inc()
                log.info(
                    f"{channel} sent",
                    extra={"ticket": message.ticket_number, "client": message.client_id, "key": message.key},
                )
                return
            log.warning("send failed, retrying", extra={"key": message.key, "error": error, "count": attempt})
        # Let the next delivery try again (JetStream backoff, then dead letter); if we never learned
        # whether Twilio took the last attempt, that delivery asks Twilio first.
        await self._release(job, error, unsure=unsure)
        raise Transient(f"{message.key}: {error}")

    async def _refresh(self, key: str, mine: str) -> None:
        """Renew our claim before a request to Twilio, or learn that another sender took it over."""
        lost = False

        def renew(current: bytes | None) -> bytes | None:
            nonlocal lost
            record = _delivery_record.decode(current) if current else None
            lost = record is None or record.state != "sending" or record.claim != mine
            return (
                None
                if lost or record is None
                else msgspec.json.encode(msgspec.structs.replace(record, claimed=time.time()))
            )

        await self.bus.kv_update(s.KV_OUTBOUND, key, renew)
        if lost:
            raise LostClaim(key)

    async def _release(self, job: Job, error: str, *, unsure: bool) -> None:
        """Hand the message back as "retry", unless another sender holds it now."""

        def back(current: bytes | None) -> bytes | None:
            record = _delivery_record.decode(current) if current else None
            if record is not None and (record.state != "sending" or record.claim != job.claim):
                return None
            return msgspec.json.encode(
                DeliveryRecord(
                    state="retry",
                    at=job.first_at,
                    channel=job.channel,
                    error=error,
                    claimed=time.time(),
                    unsure=unsure,
                    message=job.message,
                )
            )

        await self.bus.kv_update(s.KV_OUTBOUND, job.key, back)

    async def _settle(self, key: str, channel: Literal["sms", "email"], sid: str, *, attempts: int) -> None:
        """Record the send, unless a status callback already said delivered or failed."""

        def sent(current: bytes | None) -> bytes | None:
            record = _delivery_record.decode(current) if current else None
            if record is not None and record.state not in ("sending", "retry"):
                return None
            return msgspec.json.encode(
                DeliveryRecord(
                    state="sent",
                    at=self.clock.now(),
                    channel=channel,
                    sid=sid,
                    attempts=attempts,
                    message=record.message if record else None,
                )
            )

        await self.bus.kv_update(s.KV_OUTBOUND, key, sent)

    async def _find_sent(self, message: SendSms, since: datetime) -> Found | None:
        """This exact SMS if Twilio already has it (same recipient, sender and body), with its status."""
        tw = self.cfg.twilio
        body = sanitize.sms(message.body)
        after = since - RECONCILE_WINDOW
        # No DateSent filter: a message still queued at Twilio has no sent date yet. Twilio lists
        # newest first; the window is applied to date_created here.
        options: dict[str, Any] = {"to": message.to, "limit": 50}
        if not tw.messaging_service_sid:
            options["from_"] = tw.from_
        for sent in await self.twilio.messages.list_async(**options):
            if sent.date_created is not None and sent.date_created < after:
                break
            same_sender = (
                sent.messaging_service_sid == tw.messaging_service_sid
                if tw.messaging_service_sid
                else sent.from_ == tw.from_
            )
            if same_sender and sent.body == body and sent.direction != "inbound":
                return Found(str(sent.sid), str(sent.status or ""), int(sent.error_code or 0))
        return None

    async def reported(self, event: SmsStatusReported) -> None:
        """Twilio's status callback: a carrier failure after acceptance falls back like a refusal."""
        if not event.key:
            log.info("status callback without our key", extra={"id": event.id})
            return
        key = outbound_key(event.key)
        code = event.error_code or 0
        failed: DeliveryRecord | None = None

        def mark(current: bytes | None) -> bytes | None:
            nonlocal failed
            failed = None
            if current is None:
                return None
            record = _delivery_record.decode(current)
            if record.sid is not None and record.sid != event.message_sid:
                return None  # a report about some other message
            if event.status == "delivered":
                if record.state not in ("sending", "sent", "retry"):
                    return None
                return msgspec.json.encode(
                    msgspec.structs.replace(record, state="delivered", sid=event.message_sid)
                )
            if record.state == "failed":
                # Reported again (a redelivery after a crash mid-fallback): run the fallback again;
                # everything it publishes is de-duplicated, so it lands once.
                failed = record
                return None
            # "retry" included: a 5xx after Twilio created the message leaves "retry", and the
            # carrier's verdict usually comes before the next delivery.
            failed = record
            return msgspec.json.encode(
                msgspec.structs.replace(
                    record,
                    state="failed",
                    sid=event.message_sid,
                    error=f"{code} {event.status}",
                    error_code=code,
                )
            )

        await self.bus.kv_update(s.KV_OUTBOUND, key, mark)
        if failed is not None and failed.message is not None:
            await self._failed(failed.message, code, f"carrier reported {event.status}")

    async def _sms(self, message: SendSms) -> str:
        tw = self.cfg.twilio
        options: dict[str, str] = {"to": message.to, "body": sanitize.sms(message.body)}
        if self.cfg.status_callback:
            # Our key rides in the callback URL (Twilio signs it with the URL): the report comes
            # back through intake_voice and finds its delivery record without a sid index.
            glue = "&" if "?" in self.cfg.status_callback else "?"
            options["status_callback"] = f"{self.cfg.status_callback}{glue}key={quote(message.key, safe='')}"
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
        # The message stays on the record: a redelivery after a crash here re-runs the fallback.
        failed = DeliveryRecord(
            state="failed", at=now, channel=channel, error=why, error_code=code, message=message
        )
        await self._record(key, failed)
        await self._failed(message, code, why)

    async def _failed(self, message: Outbound, code: int, why: str) -> None:
        """Count, record on the timeline, then fall back: email for a client, the next tech for a tech."""
        now = self.clock.now()
        channel: Literal["sms", "email"] = "sms" if isinstance(message, SendSms) else "email"
        log.warning(f"{channel} failed permanently", extra={"key": message.key, "error": f"{code} {why}"})
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
        return await self.contacts.admit(
            RATE, to.lower(), lambda window: suppression.admit(window or suppression.RateWindow(), now)
        )

    async def _opted_out(self, phone: str) -> bool:
        return await self.contacts.opted_out(phone)

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
