"""One hot KV key (ticket counter, rotation cursor) updated by compare-and-set without a read per update."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.common.bus import Bus, KvEntry


class CasCell:
    """Concurrent handlers in this process take turns (a lock) instead of racing each other's CAS, and
    the entry we wrote last is kept, so an update is one round trip instead of a read and a write.
    Other writers still race through the CAS: a stale revision is refused, and we re-read and retry.
    """

    def __init__(self, bus: Bus, bucket: str, key: str) -> None:
        self.bus, self.bucket, self.key = bus, bucket, key
        self._lock = asyncio.Lock()
        self._known: KvEntry | None = None  # the entry as we last saw it

    async def update(self, mutate: Callable[[bytes | None], bytes | None]) -> bytes | None:
        """Like Bus.kv_update: `mutate` returns the new value, or None to leave it; returns what is stored."""
        async with self._lock:
            try:
                self._known, _ = await self.bus.kv_step(
                    self.bucket, self.key, lambda value: (mutate(value), None), seen=self._known
                )
            except BaseException:
                self._known = None  # what the server holds is unknown now: read it next time
                raise
            return self._known.value
