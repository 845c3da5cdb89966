"""Publish with a short deadline, spool to disk when NATS does not ack, republish spooled files later."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from nats.errors import BadSubjectError, MaxPayloadError

from services.common.bus import Bus, PublishFailed
from services.intake_voice.spool import Spool, Unpublishable

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()
# Failures no retry can fix: the file is moved aside instead of blocking every file behind it.
_PERMANENT: dict[type[Exception], str] = {MaxPayloadError: "too_large", BadSubjectError: "bad_subject"}


def _permanent(exc: PublishFailed) -> str | None:
    """The rejection reason when no retry can ever publish this event, else None (worth retrying)."""
    return next((reason for kind, reason in _PERMANENT.items() if isinstance(exc.__cause__, kind)), None)


class Outbox:
    def __init__(self, spool: Spool, timeout: float, bus: Bus | None = None) -> None:
        self.spool = spool
        self.timeout = timeout
        self.bus = bus  # None until the first connection succeeds: webhooks spool meanwhile
        self.spooled = 0
        self.republished = 0

    async def send(self, subject: str, message: msgspec.Struct, *, msg_id: str) -> bool:
        """True when JetStream acknowledged; False when the event was spooled for later.

        Unpublishable (nothing sent, nothing spooled) when the event could never be published.
        """
        payload = _encoder.encode(message)
        if len(payload) > self.spool.max_bytes:
            raise Unpublishable(f"{subject}: {len(payload)} bytes, at most {self.spool.max_bytes}")
        if self.bus is not None:
            try:
                await self.bus.publish_bytes(subject, payload, msg_id=msg_id, timeout=self.timeout)
                return True
            except PublishFailed as exc:
                if _permanent(exc) is not None:
                    raise Unpublishable(f"{subject}: refused by NATS ({exc})") from exc
                log.warning("publish failed, spooling", extra={"subject": subject, "error": repr(exc)})
        # On disk (fsync) before we answer Twilio, written in a worker thread: an fsync takes milliseconds
        # and, on the event loop, stalled every other webhook meanwhile (a NATS outage's p99).
        await asyncio.to_thread(self.spool.put, subject, msg_id, payload)
        self.spooled += 1
        return False

    def holds(self, msg_id: str) -> bool:
        return self.spool.path(msg_id).exists()

    async def flush(self) -> int:
        """Republish spooled events in arrival order; each file is removed only after its PubAck, while
        this worker holds it (Spool.claim): workers sharing the folder never publish one file twice."""
        if self.bus is None or not self.bus.connected:
            return 0
        sent = 0
        for path in self.spool.pending():
            with self.spool.claim(path) as entry:
                if entry is None:
                    continue
                try:
                    await self.bus.publish_bytes(
                        entry.subject, bytes(entry.payload), msg_id=entry.msg_id, timeout=self.timeout
                    )
                except PublishFailed as exc:
                    reason = _permanent(exc)
                    if reason is not None:
                        self.spool.reject(path, reason)
                        continue
                    break  # still down: keep the rest, in order, for the next round
                self.spool.remove(path)
            sent += 1
        self.republished += sent
        return sent

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.flush()
            except Exception as exc:
                log.warning("spool flush failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
