"""Keep the read model current: the timeline stream (durable consumer) and the tickets bucket (a watch).

Both are idempotent (events by id, tickets by KV revision), so a redelivery or a re-snapshot after a
reconnect changes nothing. A batch is committed to SQLite before its messages are acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from services.common.bus import Bus
from services.common.consumer import pull_batches
from services.common.kvview import WATCH_INACTIVE, stop_watch, watch_state
from services.console.store import Store
from services.contracts import subjects as s
from services.contracts.events import TimelineEntry
from services.contracts.tickets import Ticket

log = logging.getLogger(__name__)
BATCH = 512

_entry = msgspec.json.Decoder(TimelineEntry)
_ticket = msgspec.json.Decoder(Ticket)


class Projection:
    def __init__(self, bus: Bus, store: Store, durable: str) -> None:
        self.bus = bus
        self.store = store
        self.durable = durable
        self.events_seen = 0
        self.unreadable = 0
        self.tickets_ready = asyncio.Event()  # the bucket's snapshot is in the store

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=60.0,
            filter_subject=s.TIMELINE_ALL,
            max_ack_pending=BATCH * 8,
            inactive_threshold=7 * 24 * 3600.0,  # a replica gone for a week rebuilds anyway
        )
        # Creating the durable is a meta-layer write: the bus's deadline for those, not a publish's.
        return await self.bus.admin.pull_subscribe(
            s.TIMELINE_ALL, durable=self.durable, stream=s.STREAM_TIMELINE, config=config
        )

    async def apply(self, msgs: list[Msg]) -> None:
        entries: list[tuple[int, TimelineEntry]] = []
        bad: list[Msg] = []
        for msg in msgs:
            try:
                entries.append((msg.metadata.sequence.stream, _entry.decode(msg.data)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                # Not ours to dead-letter (the console may publish desk actions only): say so, loudly.
                log.error(
                    "unreadable timeline entry skipped", extra={"subject": msg.subject, "error": str(exc)}
                )
                bad.append(msg)
        self.store.add_events(entries)
        self.events_seen += len(entries)
        self.unreadable += len(bad)
        for msg in bad:
            await msg.term()
        for msg in msgs:
            if msg not in bad:
                await msg.ack()

    async def follow_timeline(self, stop: asyncio.Event) -> None:
        # `apply` commits a whole batch to SQLite before it acks any of its messages.
        await pull_batches(stop, self._subscribe, BATCH, self.apply, durable=self.durable)

    async def follow_tickets(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            watcher: KeyValue.KeyWatcher | None = None
            try:
                kv = await self.bus.kv(s.KV_TICKETS)
                watcher = await kv.watch(">", inactive_threshold=WATCH_INACTIVE)
                reading = asyncio.ensure_future(self._read(watcher))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not reading.done():
                    reading.cancel()
                    await asyncio.wait([reading])
                else:
                    reading.result()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("tickets projection error", extra={"error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)
            finally:
                if watcher is not None:
                    await stop_watch(self.bus, s.KV_TICKETS, watcher)

    async def _read(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:
                # "Initial values done"; it may come early (see services.common.kvview), so trust it
                # only with nothing pending, else wait for an entry whose delta is 0.
                if await _nothing_pending(watcher):
                    self.tickets_ready.set()
                continue
            number = entry.key
            if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                self.store.drop_ticket(number)
            else:
                try:
                    self.store.put_tickets([(entry.revision or 0, _ticket.decode(entry.value))])
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.error("unreadable ticket skipped", extra={"key": number, "error": str(exc)})
            if entry.delta == 0:
                self.tickets_ready.set()

    async def pending(self) -> int:
        """Timeline messages not yet in the store (0 when caught up, or before the first subscribe)."""
        try:
            info = await self.bus.js.consumer_info(s.STREAM_TIMELINE, self.durable)
        except NotFoundError:
            return -1
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def _nothing_pending(watcher: KeyValue.KeyWatcher) -> bool:
    info = await watch_state(watcher)
    return info is not None and not info.num_pending


async def forget(bus: Bus, durable: str) -> None:
    """Delete the durable consumer, so the next follow replays the stream from the start."""
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(s.STREAM_TIMELINE, durable)
