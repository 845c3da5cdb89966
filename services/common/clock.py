"""Injected time: services ask a Clock, so tests can fast-forward timers and business hours."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def wait(self, until: datetime | None, *, poll: float) -> None:
        """Sleep until `until` (or for at most `poll` real seconds, whichever comes first)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, until: datetime | None, *, poll: float) -> None:
        delay = poll
        if until is not None:
            delay = max(0.0, min(poll, (until - self.now()).total_seconds()))
        await asyncio.sleep(delay)


class ManualClock:
    """A clock that only moves when told; waiters wake as soon as it does."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)
        # Wake every current waiter, then re-arm for the next move.
        self._moved.set()
        self._moved = asyncio.Event()

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    async def wait(self, until: datetime | None, *, poll: float) -> None:
        if until is not None and until <= self._now:
            return
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), timeout=poll)


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime where an instant was expected")
    return value.astimezone(UTC)


ZERO = timedelta(0)
