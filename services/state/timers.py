"""The durable-timer loop shared by the router (release timers) and the notifier (ack, warn, due timers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.common.clock import Clock
from services.common.kvview import KvView

log = logging.getLogger(__name__)

MAX_TIMER_BACKOFF = 30.0  # seconds between timer retries while NATS keeps refusing


def backoff(poll: float, failures: int) -> float:
    """How long to wait after `failures` failed rounds in a row (0: the normal poll)."""
    if failures == 0:
        return poll
    return max(poll, min(poll * 2.0**failures, MAX_TIMER_BACKOFF))


async def run_timers(
    fire_due: Callable[[], Awaitable[datetime | None]],
    view: KvView[Any],
    clock: Clock,
    stop: asyncio.Event,
    *,
    poll: float,
    name: str,
) -> None:
    """Fire due timers until `stop` is set; sleep until the next due instant `fire_due` returns.

    Timers live in KV fd_timers and `view` follows them. Firing publishes with the timer's id as
    Nats-Msg-Id and then deletes the key, so a round that fails halfway is simply repeated.
    """
    failures = 0
    try:
        while not stop.is_set():
            upcoming: datetime | None = None
            try:
                upcoming = await fire_due()
                failures = 0
            except Exception as exc:
                # Whatever failed (watch, publish, connection), never keep polling a broken view:
                # drop the watch so the next round starts from a fresh snapshot, and back off so a
                # refusing server is not hammered.
                failures += 1
                log.warning(
                    "timers failed, will retry",
                    extra={
                        "timers": name,
                        "error": repr(exc),
                        "count": failures,
                        "retry_in": backoff(poll, failures),
                    },
                )
                await view.close()
            await clock.wait(upcoming, poll=backoff(poll, failures))
    finally:
        await view.close()
