"""Typed KV records: a key family with its decoder built once, and compare-and-set steps over records."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from services.common.bus import Bus, KvEntry
from services.contracts import subjects as s

T = TypeVar("T")
R = TypeVar("R")
_encode = msgspec.json.Encoder().encode  # built once: every record write goes through it


class Family(Generic[T]):
    """One kind of record: its key prefix, its bucket and its type. Keys are `<name>.<id>`, KV-safe."""

    def __init__(self, name: str, bucket: str, record: type[T]) -> None:
        self.name, self.bucket = name, bucket
        self.decoder = msgspec.json.Decoder(record)

    def key(self, ident: str) -> str:
        return s.kv_key(f"{self.name}.{ident}")

    @property
    def pattern(self) -> str:
        """Every key of the family, for a watch (KvView)."""
        return f"{self.name}.>"


async def transition(
    bus: Bus,
    bucket: str,
    key: str,
    decoder: msgspec.json.Decoder[T],
    change: Callable[[T | None], tuple[T | None, R]],
    *,
    seen: KvEntry | None = None,
) -> tuple[KvEntry, R]:
    """Compare-and-set one record: `change` returns (the new record or None to leave it, a result).

    Returns the entry as stored afterwards with the result of the step that stood (the one applied to
    the record as it was stored).

    With `seen` (the entry a previous transition returned, or `KvEntry(None, 0)` for a key expected to
    be new) the first read is skipped: one round trip, not two. A write at a stale `seen` is refused by
    the server's revision check and the step runs again on a fresh read; a step that decided to write
    nothing was checked by no server, so it runs again on a fresh read too. Never wrong, only slower.
    """

    def raw(current: bytes | None) -> tuple[bytes | None, R]:
        new, result = change(decoder.decode(current) if current else None)
        return (None if new is None else _encode(new)), result

    entry, result = await bus.kv_step(bucket, key, raw, seen=seen)
    if seen is not None and not entry.written:
        entry, result = await bus.kv_step(bucket, key, raw)
    return entry, result


class Written:
    """Each key's entry as this process last wrote it, for the next `transition` to pass as `seen`.

    Bounded: when full it is emptied, and a forgotten entry costs one read, never a mistake."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._entries: dict[str, KvEntry] = {}

    def take(self, key: str) -> KvEntry | None:
        """The entry last written at `key`, forgotten: the step using it writes a newer one or re-reads."""
        return self._entries.pop(key, None)

    def keep(self, key: str, entry: KvEntry) -> None:
        """Remember `entry` if its step wrote it: an entry left unwritten was checked by no server."""
        if not entry.written:
            return
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = entry


class Records:
    """Typed get, put, forget and compare-and-set over record families."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        # The entry of each window or counter as this process last wrote it: the next admission
        # compares-and-sets against it without reading first. Another writer (a replica), an expiry or
        # a delete makes the server refuse that revision, and the admission re-reads and runs again.
        self._known = Written()

    async def get(self, family: Family[T], ident: str) -> T | None:
        value, _ = await self.bus.kv_get(family.bucket, family.key(ident))
        return family.decoder.decode(value) if value else None

    async def put(self, family: Family[T], ident: str, record: T) -> None:
        await self.bus.kv_put(family.bucket, family.key(ident), _encode(record))

    async def forget(self, family: Family[T], ident: str) -> None:
        """Best effort: a record left behind in a bucket with a TTL expires by itself."""
        self._known.take(f"{family.bucket}/{family.key(ident)}")
        with contextlib.suppress(Exception):
            kv = await self.bus.kv(family.bucket)
            await kv.delete(family.key(ident))

    async def update(self, family: Family[T], ident: str, change: Callable[[T | None], T | None]) -> T | None:
        """Compare-and-set the record as stored now; `change` returns None to leave it.

        Returns what is stored afterwards."""

        def keep(current: T | None) -> tuple[T | None, T | None]:
            new = change(current)
            return new, (current if new is None else new)

        _, stored = await transition(self.bus, family.bucket, family.key(ident), family.decoder, keep)
        return stored

    async def admit(
        self, family: Family[T], ident: str, decide: Callable[[T | None], tuple[bool, T]]
    ) -> bool:
        """Compare-and-set a window or counter: `decide` says whether to go ahead and the record after it.

        The record is stored only when the answer is yes; returns the answer of the step that stood.
        """

        def admitted(current: T | None) -> tuple[T | None, bool]:
            allowed, updated = decide(current)
            return (updated if allowed else None), allowed

        key = f"{family.bucket}/{family.key(ident)}"
        seen = self._known.take(key)
        entry, allowed = await transition(
            self.bus, family.bucket, family.key(ident), family.decoder, admitted, seen=seen
        )
        self._known.keep(key, entry)
        return allowed
