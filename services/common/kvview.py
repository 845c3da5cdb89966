"""A live in-memory view of the keys under one prefix of a KV bucket, kept by a single long-lived watch.

Why not `kv.keys()` per poll: each listing creates an ephemeral consumer that the server keeps for five
minutes after nats-py stops reading it. Polling a few times a second filled the stream's consumer limit
(1000); from then on every listing on that bucket, by any service, failed with BadRequestError 10026.
A watch costs one consumer for as long as it runs, and `close()` deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from nats.js.api import ConsumerInfo
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from services.common.bus import Bus

log = logging.getLogger(__name__)

T = TypeVar("T")

WATCH_INACTIVE = 120.0  # a crashed process's watch consumer is removed by the server after this
WATCH_RESYNC = 300.0  # real seconds: re-snapshot now and then, so a silently stalled watch heals
WATCH_READY = 10.0  # seconds to receive the initial snapshot before giving up on this attempt


class KvView(Generic[T]):
    """`items` mirrors every live key matching `pattern` (decoded), once `ensure()` has returned.

    The view may trail the bucket by a moment: callers act on a key only after reading it again (or
    through compare-and-set), and use the view to know which keys to look at.
    """

    def __init__(self, bus: Bus, bucket: str, pattern: str, decode: Callable[[bytes], T]) -> None:
        self.bus = bus
        self.bucket = bucket
        self.pattern = pattern
        self.decode = decode
        self.items: dict[str, T] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self._follower: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._opened = 0.0
        self._lock = asyncio.Lock()

    @property
    def following(self) -> bool:
        return self._follower is not None and not self._follower.done() and self._ready.is_set()

    async def ensure(self) -> None:
        """Start following (again) when there is no live watch, or it is due for a fresh snapshot."""
        loop = asyncio.get_running_loop()
        if self.following and loop.time() - self._opened < WATCH_RESYNC:
            return
        # Concurrent handlers call this together: one builds the watch, the others wait for it and
        # then see it live; nobody replaces a watch another caller is still reading.
        async with self._lock:
            if self.following and loop.time() - self._opened < WATCH_RESYNC:
                return
            await self.close()
            kv = await self.bus.kv(self.bucket)
            # Deletes are wanted: they are how a key leaves the view.
            watcher = await kv.watch(self.pattern, inactive_threshold=WATCH_INACTIVE)
            items: dict[str, T] = {}
            ready = asyncio.Event()
            follower = asyncio.create_task(self._follow(watcher, items, ready))
            self._watcher, self._follower = watcher, follower
            # Wait for the snapshot, but not past the follower dying (it would never come then).
            snapshot = asyncio.ensure_future(ready.wait())
            try:
                await asyncio.wait([follower, snapshot], timeout=WATCH_READY, return_when=FIRST_COMPLETED)
            finally:
                snapshot.cancel()
            if not ready.is_set():
                await self.close()
                raise TimeoutError(f"no snapshot of {self.bucket} {self.pattern}")
            # Only a complete snapshot becomes the view.
            self.items, self._ready, self._opened = items, ready, loop.time()

    def forget(self, key: str) -> None:
        self.items.pop(key, None)

    async def close(self) -> None:
        watcher, follower = self._watcher, self._follower
        self._watcher, self._follower = None, None
        self._ready = asyncio.Event()
        if follower is not None:
            follower.cancel()
            # wait() rather than await: the follower's cancellation must not be mistaken for ours.
            await asyncio.wait([follower])
        if watcher is not None:
            await stop_watch(self.bus, self.bucket, watcher)

    async def _follow(self, watcher: KeyValue.KeyWatcher, items: dict[str, T], ready: asyncio.Event) -> None:
        async for entry in watcher:
            if entry is None:
                # nats-py's "initial values done" marker. It can come too early: when the server has
                # pushed every message before nats-py asked how many were pending, the marker goes
                # ahead of entries still queued. Trust it only when the consumer delivered nothing.
                if items or ready.is_set() or await _nothing_delivered(watcher):
                    ready.set()
                continue
            if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                items.pop(entry.key, None)
            else:
                try:
                    items[entry.key] = self.decode(entry.value)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.error("unreadable entry kept out", extra={"key": entry.key, "error": str(exc)})
            if entry.delta == 0:
                ready.set()  # nothing left pending after this one: the snapshot is complete


async def stop_watch(bus: Bus, bucket: str, watcher: KeyValue.KeyWatcher) -> None:
    """End a watch of `bucket` and delete its consumer (best effort: the server drops it anyway later)."""
    # stop() only unsubscribes: delete the consumer too, or it lingers for WATCH_INACTIVE.
    consumer = getattr(watcher._sub, "_consumer", None)
    with contextlib.suppress(Exception):
        await watcher.stop()  # type: ignore[no-untyped-call]  # unannotated in nats-py
    if consumer:
        with contextlib.suppress(Exception):
            await bus.js.delete_consumer(f"KV_{bucket}", consumer)


async def watch_state(watcher: KeyValue.KeyWatcher) -> ConsumerInfo | None:
    """What the server says of a watch's consumer (delivered, pending), or None when it cannot say."""
    if watcher._sub is None:
        return None
    try:
        info: ConsumerInfo = await watcher._sub.consumer_info()
    except Exception:
        return None
    return info


async def _nothing_delivered(watcher: KeyValue.KeyWatcher) -> bool:
    info = await watch_state(watcher)
    if info is None:
        return False  # unsure: wait for an entry with nothing pending instead
    delivered = info.delivered.consumer_seq if info.delivered else 0
    return not delivered and not info.num_pending


async def snapshot(bus: Bus, bucket: str, pattern: str, decode: Callable[[bytes], T]) -> dict[str, T]:
    """The live keys under `pattern` right now, read once through a watch that is then deleted."""
    view = KvView(bus, bucket, pattern, decode)
    try:
        await view.ensure()
        return dict(view.items)
    finally:
        await view.close()
