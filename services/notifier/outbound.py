"""The sender worker: one idempotency key, at most one SMS or email, ever; retries and fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import aiohttp
import aiosmtplib
import msgspec
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus, KvEntry, Transient
from services.common.clock import Clock
from services.common.consumer import Delivery
from services.common.metrics import Metrics
from services.contracts import DeliveryFailed, SendEmail, SendSms, SmsStatusReported, TimelineEntry
from services.contracts import subjects as s
from services.notifier import delivery as transitions
from services.notifier import suppression
from services.notifier.config import NotifierConfig
from services.notifier.delivery import (
    Channel,
    DeliveryRecord,
    Outbound,
    channel_of,
    decode_record,
    outbound_key,
)
from services.notifier.families import RATE
from services.notifier.handoff import Turn, Turns
from services.notifier.transport import Transport
from services.state import records
from services.state.contacts import ContactState

log = logging.getLogger(__name__)
R = TypeVar("R")

# Work handed to a person must reach them; the rate window guards against answering loops instead.
RATE_EXEMPT = frozenset({"tech_dispatch", "tech_escalation", "tech_relay", "ops_alert"})

# Twilio errors that no retry will fix: invalid number, unsubscribed, not a mobile, unreachable.
# The 300xx ones normally arrive later, through the status callback (see Sender.reported).
PERMANENT = frozenset({21211, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006, 30007})


def retryable(exc: Exception) -> bool:
    if isinstance(exc, TwilioRestException):
        return bool(exc.status == 429 or exc.status >= 500)
    # aiohttp's disconnects and payload errors are not OSErrors, and may come after Twilio acted.
    return isinstance(exc, (OSError, asyncio.TimeoutError, aiosmtplib.SMTPException, aiohttp.ClientError))


class LostClaim(Exception):
    """Another sender took this message over (ours ran past the in-flight window): stop, send nothing."""


FAILED_STATUSES = frozenset({"failed", "undelivered"})
NEW = KvEntry(None, 0)  # "expected not to exist yet": a transition creates the record without a read


@dataclass(frozen=True)
class Job:
    """One delivery's hold on one outbound message."""

    message: Outbound
    key: str  # the delivery record's KV key
    channel: Channel
    claim: str  # our claim id on the record
    first_at: datetime  # when the first attempt at this message began


class Sender:
    def __init__(self, bus: Bus, cfg: NotifierConfig, clock: Clock, twilio: TwilioClient) -> None:
        self.metrics = Metrics()
        self.bus = bus
        self.contacts = ContactState(bus)
        self.cfg = cfg
        self.clock = clock
        self.transport = Transport(cfg, clock, twilio)
        # Each sent SMS's record as this process settled it: its status report (usually a second or two
        # later, on this process's status consumer) is written at that revision without a read. A
        # stale one is refused by the server and re-read (records.transition); forgetting costs a read.
        self.settled = records.Written()
        # One recipient's messages run side by side (the consumer gives them no lane): each claims,
        # settles and is acked on its own round trips, and they line up only where order is seen by
        # the recipient. Its rate window is stepped in arrival order (which message a full window
        # refuses depends on it, and in-process steps never race each other's compare-and-set), and
        # its requests to Twilio or the relay start in arrival order, each once the one before it
        # was answered (or given up). Order holds within a process: replicas sharing the durable
        # split one recipient's messages between them, as they always did.
        self.admissions = Turns()
        self.handoffs = Turns()

    async def handle(self, message: Outbound, delivery: Delivery) -> None:
        # Taken before the first await: the consumer starts handlers in arrival order.
        recipient = message.to.lower()
        admission, handoff = self.admissions.take(recipient), self.handoffs.take(recipient)
        try:
            await self._handle(message, admission, handoff)
        finally:
            admission.passed()
            handoff.passed()

    async def _handle(self, message: Outbound, admission: Turn, handoff: Turn) -> None:
        key = outbound_key(message.key)
        channel = channel_of(message)
        now = self.clock.now()
        wall = time.time()
        mine = uuid.uuid4().hex
        # Nearly every message is new: try to create its record outright (one round trip); a record
        # that exists refuses the create and the claim runs again on what is stored.
        entry, claimed = await self.step(
            key,
            lambda current: transitions.claim(
                current, message, now=now, wall=wall, mine=mine, reconcile_after=self.cfg.reconcile_after
            ),
            seen=NEW,
        )
        outcome, first_at, previous = claimed.outcome, claimed.first_at, claimed.previous
        if outcome == "done":
            return  # the turns pass at once (once those before them have)
        if outcome == "busy":
            raise Transient(f"{message.key}: a send may still be in flight")
        if outcome == "refail":
            assert previous is not None and previous.message is not None
            # Publishing the fallback again is harmless: every id it publishes is de-duplicated.
            await self._failed(previous.message, previous.error_code, previous.error)
            return
        job = Job(message=message, key=key, channel=channel, claim=mine, first_at=first_at)
        held = Held(self, job, entry)
        try:
            fresh, unsure = outcome == "new", outcome == "reconcile"
            await self._deliver(job, held, (admission, handoff), now=now, fresh=fresh, unsure=unsure)
        except (Transient, asyncio.CancelledError):
            raise
        except Exception:
            # Whatever broke after the claim, leave a record the next delivery can act on at once,
            # asking Twilio first, instead of a "sending" it must wait out.
            with contextlib.suppress(Exception):
                await held.release("unexpected error", unsure=True)
            raise

    async def _deliver(
        self, job: Job, held: Held, turns: tuple[Turn, Turn], *, now: datetime, fresh: bool, unsure: bool
    ) -> None:
        message, key, channel, first_at = job.message, job.key, job.channel, job.first_at
        admission, handoff = turns
        if fresh and message.purpose not in RATE_EXEMPT:
            await admission.wait()
            admitted = await self._admitted(message.to, now)
            admission.passed()
            if not admitted:
                handoff.passed()  # nothing to hand over: the next message need not wait for the record
                refused = DeliveryRecord(state="suppressed", at=now, channel=channel, error="rate")
                await self._record(key, refused)
                await self._timeline(
                    message, "message_failed", f"{channel} to {message.to} suppressed: rate limit"
                )
                return
        admission.passed()
        # Held through this message's retries below, as its lane was: a 5xx does not let a later
        # message overtake it. One that is handed back to JetStream (Transient) comes back later.
        await handoff.wait()
        if isinstance(message, SendSms) and await self.contacts.opted_out(message.to):
            handoff.passed()
            await self._permanent(message, key, 21610, "recipient opted out")
            return
        # Before sending again after an outcome we never heard (a crash, a timeout, a 5xx), ask
        # Twilio whether it has the message. Email has no such list: it is sent again with the same
        # Message-ID, which mail systems collapse, so an interrupted email is at-least-once.
        unsure = unsure and isinstance(message, SendSms)
        error = ""
        attempts = max(1, self.cfg.send_attempts)
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await asyncio.sleep(min(self.cfg.retry_base * 2 ** (attempt - 2), 5.0))
            try:
                if unsure and isinstance(message, SendSms):
                    await held.before_request()
                    found = await self.transport.find_sent(message, first_at)
                    unsure = False
                    if found is not None:
                        log.info("sms found at Twilio after an unanswered send", extra={"key": message.key})
                        handoff.passed()
                        if found.status in FAILED_STATUSES:
                            await self._permanent(message, key, found.error_code, f"carrier: {found.status}")
                        else:
                            await held.settle(found.sid, attempts=attempt)
                        return
                await held.before_request()
                sid = await (
                    self.transport.sms(message)
                    if isinstance(message, SendSms)
                    else self.transport.email(message)
                )
            except TwilioRestException as exc:
                if exc.code in PERMANENT or not retryable(exc):
                    handoff.passed()  # answered: the fallback need not hold the next message
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
                # Twilio has it: the next message may go while this one's settle is written. A crash
                # before the settle is stored leaves "sending", reconciled against Twilio's list.
                handoff.passed()
                await held.settle(sid, attempts=attempt)
                self.metrics.outbound_sent.labels(channel).inc()
                log.info(
                    f"{channel} sent",
                    extra={"ticket": message.ticket_number, "client": message.client_id, "key": message.key},
                )
                return
            log.warning("send failed, retrying", extra={"key": message.key, "error": error, "count": attempt})
        # Let the next delivery try again (JetStream backoff, then dead letter); if we never learned
        # whether Twilio took the last attempt, that delivery asks Twilio first.
        await held.release(error, unsure=unsure)
        raise Transient(f"{message.key}: {error}")

    async def step(
        self,
        key: str,
        change: Callable[[DeliveryRecord | None], tuple[DeliveryRecord | None, R]],
        *,
        seen: KvEntry | None,
    ) -> tuple[KvEntry, R]:
        """Apply one transition of the delivery state machine to a record: at `seen` (the entry last
        written, or NEW) without a read, or with `seen=None` to the record as stored now."""
        return await records.transition(self.bus, s.KV_OUTBOUND, key, decode_record, change, seen=seen)

    async def reported(self, event: SmsStatusReported, delivery: Delivery) -> None:
        """Twilio's status callback: a carrier failure after acceptance falls back like a refusal."""
        if not event.key:
            log.info("status callback without our key", extra={"id": event.id})
            return
        key = outbound_key(event.key)
        code = event.error_code or 0
        _, failed = await self.step(
            key, lambda current: transitions.report(current, event), seen=self.settled.take(key)
        )
        if failed is not None and failed.message is not None:
            await self._failed(failed.message, code, f"carrier reported {event.status}")

    async def _permanent(self, message: Outbound, key: str, code: int, why: str) -> None:
        now = self.clock.now()
        channel = channel_of(message)
        # The message stays on the record: a redelivery after a crash here re-runs the fallback.
        failed = DeliveryRecord(
            state="failed", at=now, channel=channel, error=why, error_code=code, message=message
        )
        await self._record(key, failed)
        await self._failed(message, code, why)

    async def _failed(self, message: Outbound, code: int, why: str) -> None:
        """Count, record on the timeline, then fall back: email for a client, the next tech for a tech."""
        now = self.clock.now()
        channel = channel_of(message)
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
            failed = DeliveryFailed(id=f"failed.{message.key}", message=message, error_code=code, at=now)
            await self.bus.publish(s.DELIVERY_FAILED, failed, msg_id=failed.id)

    async def _record(self, key: str, record: DeliveryRecord) -> None:
        await self.bus.kv_put(s.KV_OUTBOUND, key, msgspec.json.encode(record))

    async def _admitted(self, to: str, now: datetime) -> bool:
        return await self.contacts.admit(
            RATE, to.lower(), lambda window: suppression.admit(window or suppression.RateWindow(), now)
        )

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


class Held:
    """Our claim on one message's record, and the record's entry as we last wrote it: the transitions
    that follow (renew, settle, release) write at that revision without reading it first. Anyone
    else's write in between makes the server refuse ours, and the transition runs again on a read."""

    def __init__(self, sender: Sender, job: Job, entry: KvEntry) -> None:
        self.sender, self.job, self.entry = sender, job, entry
        self.fresh = True  # the claim was written a moment ago: the first request needs no renewal

    async def _transition(
        self, change: Callable[[DeliveryRecord | None], tuple[DeliveryRecord | None, R]]
    ) -> R:
        self.entry, result = await self.sender.step(self.job.key, change, seen=self.entry)
        return result

    async def before_request(self) -> None:
        """Renew our claim before a request to Twilio, or learn that another sender took it over."""
        if not self.fresh:
            mine = self.job.claim
            if not await self._transition(lambda current: transitions.renew(current, mine, time.time())):
                raise LostClaim(self.job.key)
        self.fresh = False

    async def settle(self, sid: str, *, attempts: int) -> None:
        """Record the send, unless a status callback already said delivered or failed."""
        now, channel = self.sender.clock.now(), self.job.channel
        await self._transition(
            lambda current: transitions.settle(current, channel, sid, attempts=attempts, now=now)
        )
        if self.job.channel == "sms":
            self.sender.settled.keep(self.job.key, self.entry)

    async def release(self, error: str, *, unsure: bool) -> None:
        """Hand the message back as "retry", unless another sender holds it now."""
        job = self.job
        await self._transition(
            lambda current: transitions.release(
                current,
                job.message,
                mine=job.claim,
                first_at=job.first_at,
                error=error,
                unsure=unsure,
                wall=time.time(),
            )
        )
