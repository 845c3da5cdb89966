"""Durable pull consumers with explicit acks: retries, dead letters, and keeping what a full store refused."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.bus import Bus, Poison, PublishFailed
from services.contracts import subjects as s

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    max_deliver: int = 5  # handler failures before dead-lettering; storage refusals do not count
    ack_wait: float = 30.0
    batch: int = 32
    backoff: tuple[float, ...] = (0.5, 2.0, 10.0, 30.0)
    storage_backoff: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class Undecodable:
    """A payload the decoder refused: it is dead-lettered with the decoder's reason."""

    error: str


@dataclass(frozen=True)
class Delivery:
    subject: str
    num_delivered: int
    stream_seq: int
    headers: dict[str, str]


class Consumer(Generic[T]):
    """A durable pull consumer with explicit acks.

    Success -> ack. `Poison` or undecodable payload -> dead-letter subject, then term.
    JetStream refusing a write for space -> nak with backoff, not counted as a failure: the message
    waits for room (however long), it is never given up on.
    Anything else -> nak with backoff; after `max_deliver` failures -> dead-letter, then term.
    A dead-letter publish that fails -> nak: the message stays here until the dead letter is stored.
    The server's own max_deliver is unlimited, so it never drops a message we did not settle; the
    count of failures is kept here (deliveries minus storage refusals). Handlers must be idempotent:
    a crash between handling and ack redelivers the message.

    Without `lanes`, messages are handled one at a time in arrival order. With `lanes`, up to `width`
    at once: each handler waits on a few sequential round trips, so one-at-a-time handling leaves the
    service idle most of the time. Messages that share a lane key (`lanes(message)`: a ticket, a
    thread, a recipient) start in arrival order, each after the previous one finished, across fetched
    batches too; everything else overlaps. A message whose handler fails is nak'd and comes back
    later, so its successors do not wait for that retry. Acks stay per message.
    """

    def __init__(
        self,
        bus: Bus,
        spec: ConsumerSpec,
        decode: Callable[[bytes], T],
        handle: Callable[[T, Delivery], Awaitable[None]],
        *,
        lanes: Callable[[T], frozenset[str]] | None = None,
        width: int = 1,
    ) -> None:
        if lanes is not None:
            # Fetch no more than can run: a message waiting here still runs down its ack_wait, and an
            # expiry would redeliver it (burning a delivery) while it has not even started.
            spec = replace(spec, batch=min(spec.batch, max(1, width)))
        self.bus = bus
        self.spec = spec
        self.decode = decode
        self.handle = handle
        self.lanes = lanes
        self.handled = 0
        self.dead_lettered = 0
        self._refused: dict[int, int] = {}  # stream sequence -> deliveries that ended in a storage refusal
        self._slots = asyncio.Semaphore(max(1, width))
        self._last: dict[str, asyncio.Task[None]] = {}  # the latest message holding each lane key
        self._inflight: set[asyncio.Task[None]] = set()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        spec = self.spec
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=-1,
            ack_wait=spec.ack_wait,
            filter_subject=spec.filter_subject,
            max_ack_pending=max(spec.batch * 4, 256),
        )
        # Create or update: pull_subscribe alone binds an existing durable with its old settings (a
        # server-side max_deliver would drop a message the store could not take for a while).
        await self.bus.admin.add_consumer(spec.stream, config)
        return await self.bus.admin.pull_subscribe(
            spec.filter_subject, durable=spec.durable, stream=spec.stream, config=config
        )

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await pull_batches(
                stop, self._subscribe, self.spec.batch, self._process_all, durable=self.spec.durable
            )
        except asyncio.CancelledError:
            # A kill drops what is in flight, unacked: JetStream redelivers it after ack_wait.
            for task in self._inflight:
                task.cancel()
            raise
        finally:
            # A graceful stop finishes what was fetched before the bus closes.
            if self._inflight:
                await asyncio.wait(self._inflight)

    async def _process_all(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            await self._process(msg)

    async def _process(self, msg: Msg) -> None:
        # Decoded once: the lanes and the handler read the same value.
        value = self._decoded(msg)
        if self.lanes is None:
            await self._settle(msg, value)
            return
        # An undecodable message depends on nothing: it is dead-lettered in its own lane.
        keys = frozenset() if isinstance(value, Undecodable) else self.lanes(value)
        await self._slots.acquire()
        before = {self._last[k] for k in keys if k in self._last and not self._last[k].done()}
        task = asyncio.create_task(self._in_lane(msg, value, before))
        self._inflight.add(task)
        for key in keys:
            self._last[key] = task
        task.add_done_callback(lambda t: self._finished(t, keys))

    async def _in_lane(self, msg: Msg, value: T | Undecodable, before: set[asyncio.Task[None]]) -> None:
        try:
            if before:
                await asyncio.wait(before)
            await self._settle(msg, value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # An ack or dead-letter publish failed: the message stays unacked and comes back.
            log.warning("message handling failed", extra={"durable": self.spec.durable, "error": repr(exc)})

    def _finished(self, task: asyncio.Task[None], keys: frozenset[str]) -> None:
        self._slots.release()
        self._inflight.discard(task)
        for key in keys:
            if self._last.get(key) is task:
                del self._last[key]

    def _decoded(self, msg: Msg) -> T | Undecodable:
        try:
            return self.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return Undecodable(str(exc))

    async def _settle(self, msg: Msg, value: T | Undecodable) -> None:
        """Handle a decoded message and ack, nak or dead-letter it."""
        meta = msg.metadata
        delivery = Delivery(
            subject=msg.subject,
            num_delivered=int(meta.num_delivered or 1),
            stream_seq=int(meta.sequence.stream if meta.sequence else 0),
            headers=dict(msg.headers or {}),
        )
        if isinstance(value, Undecodable):
            await self._dead_letter(msg, delivery, f"undecodable: {value.error}")
            return
        try:
            await self.handle(value, delivery)
        except Poison as exc:
            await self._dead_letter(msg, delivery, f"poison: {exc}")
            return
        except Exception as exc:
            if self.bus.storage.observe(exc):
                refused = self._refused[delivery.stream_seq] = self._refused.get(delivery.stream_seq, 0) + 1
                log.warning(
                    "jetstream refused a write (store full): message kept",
                    extra={"durable": self.spec.durable, "error": repr(exc), "count": refused},
                )
                await self._nak(msg, self.spec.storage_backoff, refused)
                return
            failures = delivery.num_delivered - self._refused.get(delivery.stream_seq, 0)
            if failures >= self.spec.max_deliver:
                await self._dead_letter(msg, delivery, f"gave up after {failures} failures: {exc!r}")
                return
            log.warning(
                "handler failed, will retry",
                extra={"durable": self.spec.durable, "error": repr(exc), "count": failures},
            )
            await self._nak(msg, self.spec.backoff, failures)
            return
        await msg.ack()
        self._settled(delivery)
        self.handled += 1

    async def _nak(self, msg: Msg, backoff: tuple[float, ...], count: int) -> None:
        with contextlib.suppress(Exception):
            await msg.nak(delay=backoff[min(max(count, 1), len(backoff)) - 1])

    def _settled(self, delivery: Delivery) -> None:
        self._refused.pop(delivery.stream_seq, None)
        if len(self._refused) > 100_000:
            # Entries of messages another instance settled: forgetting them only makes a later
            # failure of theirs count a little sooner toward the dead letter, never a loss.
            self._refused.clear()

    async def _dead_letter(self, msg: Msg, delivery: Delivery, reason: str) -> None:
        log.error(
            "dead-lettering message",
            extra={"durable": self.spec.durable, "subject": delivery.subject, "error": reason},
        )
        headers = {
            "Fd-Original-Subject": delivery.subject,
            "Fd-Durable": self.spec.durable,
            "Fd-Error": reason[:500].replace("\r", " ").replace("\n", " "),
            "Fd-Deliveries": str(delivery.num_delivered),
        }
        try:
            await self.bus.publish_bytes(
                s.dlq_subject(self.spec.stream),
                msg.data,
                msg_id=f"dlq:{self.spec.durable}:{delivery.stream_seq}",
                headers=headers,
            )
        except PublishFailed as exc:
            # Not stored as a dead letter: never term. The message comes back and tries again.
            log.error("dead letter not stored, message kept", extra={"error": repr(exc)})
            await self._nak(msg, self.spec.storage_backoff, self._refused.get(delivery.stream_seq, 0) + 1)
            return
        await msg.term()
        self._settled(delivery)
        self.dead_lettered += 1


async def pull_batches(
    stop: asyncio.Event,
    subscribe: Callable[[], Awaitable[JetStreamContext.PullSubscription]],
    batch: int,
    apply: Callable[[list[Msg]], Awaitable[None]],
    *,
    durable: str,
) -> None:
    """Fetch up to `batch` messages at a time and hand them to `apply` (which acks them) until `stop`.

    Any error (disconnected, the consumer lost with a server restart, ...) drops the subscription,
    backs off and subscribes again; what was fetched but not acked comes back after its ack_wait.
    """
    sub: JetStreamContext.PullSubscription | None = None
    delay = 0.2
    while not stop.is_set():
        try:
            if sub is None:
                sub = await subscribe()
                delay = 0.2
            try:
                msgs = await sub.fetch(batch, timeout=0.5)
            except TimeoutError:
                continue
            await apply(msgs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("pull loop error, subscribing again", extra={"durable": durable, "error": repr(exc)})
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            sub = None
            await _sleep_or_stop(stop, delay)
            delay = min(delay * 2, 5.0)
    if sub is not None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
