"""Typed KV records: a key family with its decoder built once, and compare-and-set steps over records."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from services.common.bus import Bus
from services.contracts import subjects as s

T = TypeVar("T")
R = TypeVar("R")


class Family(Generic[T]):
    """One kind of record: its key prefix, its bucket and its type. Keys are `<name>.<id>`, KV-safe."""

    def __init__(self, name: str, bucket: str, record: type[T]) -> None:
        self.name, self.bucket = name, bucket
        self.decoder = msgspec.json.Decoder(record)

    def key(self, ident: str) -> str:
        return s.kv_key(f"{self.name}.{ident}")


async def step(
    bus: Bus,
    bucket: str,
    key: str,
    decoder: msgspec.json.Decoder[T],
    change: Callable[[T | None], tuple[T | None, R]],
) -> R:
    """Compare-and-set one record: `change` returns (the new record or None to leave it, a result).

    Returns the result of the step that stood (the one applied to the record as it was stored).
    """

    def raw(current: bytes | None) -> tuple[bytes | None, R]:
        new, result = change(decoder.decode(current) if current else None)
        return (None if new is None else msgspec.json.encode(new)), result

    _, result = await bus.kv_step(bucket, key, raw)
    return result


class Records:
    """Typed get, put, forget and compare-and-set over record families."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def get(self, family: Family[T], ident: str) -> T | None:
        value, _ = await self.bus.kv_get(family.bucket, family.key(ident))
        return family.decoder.decode(value) if value else None

    async def put(self, family: Family[T], ident: str, record: T) -> None:
        kv = await self.bus.kv(family.bucket)
        await kv.put(family.key(ident), msgspec.json.encode(record))

    async def forget(self, family: Family[T], ident: str) -> None:
        """Best effort: a record left behind in a bucket with a TTL expires by itself."""
        with contextlib.suppress(Exception):
            kv = await self.bus.kv(family.bucket)
            await kv.delete(family.key(ident))

    async def update(self, family: Family[T], ident: str, change: Callable[[T | None], T | None]) -> T | None:
        """Compare-and-set the record as stored now; `change` returns None to leave it.

        Returns what is stored afterwards."""

        def keep(current: T | None) -> tuple[T | None, T | None]:
            new = change(current)
            return new, (current if new is None else new)

        return await step(self.bus, family.bucket, family.key(ident), family.decoder, keep)

    async def admit(
        self, family: Family[T], ident: str, decide: Callable[[T | None], tuple[bool, T]]
    ) -> bool:
        """Compare-and-set a window or counter: `decide` says whether to go ahead and the record after it.

        The record is stored only when the answer is yes; returns the answer of the step that stood.
        """

        def admitted(current: T | None) -> tuple[T | None, bool]:
            allowed, updated = decide(current)
            return (updated if allowed else None), allowed

        return await step(self.bus, family.bucket, family.key(ident), family.decoder, admitted)
