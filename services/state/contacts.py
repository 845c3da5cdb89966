"""Per-contact state: opt-outs and last touches kept (fd_contacts), counters that expire (fd_windows).

Every key is `<family>.<id>` (made KV-safe by `subjects.kv_key`), built only by `Family.key`; the
bucket says how long it lives (fd_windows has a TTL, fd_contacts none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from services.common.bus import Bus
from services.contracts import subjects as s

T = TypeVar("T")


class Family(Generic[T]):
    """One kind of contact state: its key prefix, its bucket and its record type (decoder built once)."""

    def __init__(self, name: str, bucket: str, record: type[T]) -> None:
        self.name, self.bucket = name, bucket
        self.decoder = msgspec.json.Decoder(record)

    def key(self, ident: str) -> str:
        return s.kv_key(f"{self.name}.{ident}")


class OptOut(msgspec.Struct, frozen=True, kw_only=True):
    opted_out: bool
    at: datetime


class LastTouch(msgspec.Struct, frozen=True, kw_only=True):
    """The client's most recent finished job, quoted to the next tech as context."""

    text: str
    ticket_number: str
    at: datetime


OPT_OUT = Family("optout", s.KV_CONTACTS, OptOut)  # by phone: STOP / START
LAST_TOUCH = Family("touch", s.KV_CONTACTS, LastTouch)  # by client id
UPDATE_STAMP = Family("update", s.KV_WINDOWS, datetime)  # by ticket: when the client was last updated


class ContactState:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def get(self, family: Family[T], ident: str) -> T | None:
        value, _ = await self.bus.kv_get(family.bucket, family.key(ident))
        return family.decoder.decode(value) if value else None

    async def put(self, family: Family[T], ident: str, record: T) -> None:
        kv = await self.bus.kv(family.bucket)
        await kv.put(family.key(ident), msgspec.json.encode(record))

    async def forget(self, family: Family[T], ident: str) -> None:
        """Best effort: a counter left behind expires with its bucket's TTL."""
        with contextlib.suppress(Exception):
            kv = await self.bus.kv(family.bucket)
            await kv.delete(family.key(ident))

    async def update(self, family: Family[T], ident: str, change: Callable[[T | None], T | None]) -> T | None:
        """Compare-and-set the record as stored now; `change` returns None to leave it.

        Returns what is stored afterwards."""

        def mutate(current: bytes | None) -> bytes | None:
            new = change(family.decoder.decode(current) if current else None)
            return None if new is None else msgspec.json.encode(new)

        stored = await self.bus.kv_update(family.bucket, family.key(ident), mutate)
        return family.decoder.decode(stored) if stored else None

    async def admit(
        self, family: Family[T], ident: str, decide: Callable[[T | None], tuple[bool, T]]
    ) -> bool:
        """Compare-and-set a window or counter: `decide` says whether to go ahead and the record after it.

        The record is stored only when the answer is yes; returns that answer as it was stored.
        """

        def mutate(current: bytes | None) -> bytes | None:
            allowed, updated = decide(family.decoder.decode(current) if current else None)
            return msgspec.json.encode(updated) if allowed else None

        stored = await self.bus.kv_swap(family.bucket, family.key(ident), mutate)
        return stored.written

    async def opted_out(self, phone: str) -> bool:
        record = await self.get(OPT_OUT, phone)
        return record is not None and record.opted_out
