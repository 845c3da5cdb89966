"""One hot KV key (ticket counter, rotation cursor) stepped by many handlers: a compare-and-set a group."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from services.common.bus import Bus, KvEntry

R = TypeVar("R")
Step = Callable[[bytes | None], tuple[bytes | None, R]]


class _Waiter(Generic[R]):
    __slots__ = ("future", "step")

    def __init__(self, step: Step[R], future: asyncio.Future[R]) -> None:
        self.step, self.future = step, future


class GroupedCell:
    """One key stepped by many concurrent handlers, in arrival order, with one round trip per group.

    A compare-and-set per request would serialize every request on one round trip to the server, and
    a second replica would mostly lose the race and re-read. Instead the steps that arrive while a
    write is in flight wait together; the next write applies them one after the other to the value
    (each sees the previous one's result, exactly as if they had gone one by one) and stores the last
    value at the revision it read. A lost race re-reads and re-runs the whole group, so steps must be
    pure; nobody gets a result before the value it came from is stored. The entry we wrote last is
    kept, so an uncontended write is one round trip, not a read and a write.
    """

    def __init__(self, bus: Bus, bucket: str, key: str) -> None:
        self.bus, self.bucket, self.key = bus, bucket, key
        self._known: KvEntry | None = None  # the entry as we last saw it
        self._waiting: list[_Waiter[Any]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # compare-and-sets that stood (for tests and metrics: fewer than the steps)

    async def step(self, step: Step[R]) -> R:
        """Apply `step` (current value -> (new value or None to leave it, result)); returns its result
        once the value it produced (or the one it left) is stored."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiter(step, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await future

    async def update(self, mutate: Callable[[bytes | None], bytes | None]) -> bytes | None:
        """Like Bus.kv_update: `mutate` returns the new value, or None to leave it; returns what it left."""

        def step(current: bytes | None) -> tuple[bytes | None, bytes | None]:
            new = mutate(current)
            return new, current if new is None else new

        return await self.step(step)

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                self._known, outcomes = await self.bus.kv_step(
                    self.bucket, self.key, functools.partial(_apply, group), seen=self._known
                )
            except BaseException as exc:
                self._known = None  # what the server holds is unknown now: read it next time
                for waiter in group:
                    if waiter.future.done():
                        continue
                    if isinstance(exc, Exception):
                        waiter.future.set_exception(exc)
                    else:
                        waiter.future.cancel()  # stopped mid-write: the handlers stop too
                if not isinstance(exc, Exception):
                    raise
                continue
            if self._known.written:
                self.writes += 1
            for waiter, (result, error) in zip(group, outcomes, strict=True):
                if waiter.future.done():
                    continue  # its handler was cancelled: the step stands, as a lone write would
                if error is not None:
                    waiter.future.set_exception(error)
                else:
                    waiter.future.set_result(result)

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        for waiter in self._waiting:
            waiter.future.cancel()
        self._waiting = []


def _apply(
    group: list[_Waiter[Any]], value: bytes | None
) -> tuple[bytes | None, list[tuple[Any, Exception | None]]]:
    """Run the group's steps in order on `value`: (the value to store or None, each (result, error)).

    A step that raises is left out (its caller gets the error) and the others go on from the value
    before it.
    """
    current, changed = value, False
    outcomes: list[tuple[Any, Exception | None]] = []
    for waiter in group:
        try:
            new, result = waiter.step(current)
        except Exception as exc:
            outcomes.append((None, exc))
            continue
        if new is not None:
            current, changed = new, True
        outcomes.append((result, None))
    return (current if changed else None), outcomes
