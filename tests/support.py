"""What tests share besides fixtures: polling a condition, waiting for consumers to drain, running main()."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from nats.js.api import RawStreamMsg

from services.common.bus import Bus
from services.contracts import Sender, ServiceRequest

T = TypeVar("T")
RECEIVED = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

# Often enough that a condition met is seen at once, rarely enough not to load the shared machine.
POLL = 0.05


@overload
async def until(check: Callable[[], Awaitable[T]], timeout: float = 20.0, what: str = "condition") -> T: ...
@overload
async def until(check: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T: ...
async def until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` (plain or async) until it returns something truthy, which is returned.

    `timeout` is in real seconds and only bounds a failure: a condition met returns at the next poll.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = check()
        result = await answer if inspect.isawaitable(answer) else answer
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(POLL)


async def settled(
    bus: Bus,
    durables: Sequence[tuple[str, str]],
    *,
    rounds: int = 3,
    pause: float = 0.1,
    patience: float = 10.0,
) -> bool:
    """Wait until every (stream, durable) has nothing pending or unacknowledged, `rounds` times over.

    A handler may publish into the next stream before it acks, and an answer may come back through
    HTTP (a status callback), so the chain is walked again after a short pause. The answer says
    whether the last walk found everything drained; callers that only want the quiet moment (their
    own assertions name what is missing) may ignore it.
    """
    drained = False
    for _ in range(rounds):
        drained = True
        for stream, durable in durables:
            for _ in range(int(patience / POLL)):
                # The consumer may not exist yet (its service is still starting): that is not drained.
                with contextlib.suppress(Exception):
                    if await bus.pending(stream, durable) == 0:
                        break
                await asyncio.sleep(POLL)
            else:
                drained = False
        await asyncio.sleep(pause)
    return drained


@contextlib.asynccontextmanager
async def serving(
    main: Callable[..., Coroutine[Any, Any, None]], cfg: Any, *, stop_within: float = 15.0, **options: Any
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a service's `main(cfg, stop=..., **options)` for the block; it must shut down when asked."""
    stop = asyncio.Event()
    task = asyncio.create_task(main(cfg, stop=stop, **options))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_within)


async def stream_messages(bus: Bus, stream: str) -> list[RawStreamMsg]:
    """Every message a stream holds, oldest first; an empty stream holds none (get_msg would fail)."""
    info = await bus.js.stream_info(stream)
    if not info.state.messages:
        return []
    return [await bus.js.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]


def email_request(n: int) -> ServiceRequest:
    """A valid request numbered `n`, for tests of plumbing that only needs something to carry."""
    return ServiceRequest(
        id=f"req-{n}", channel="email", received_at=RECEIVED, sender=Sender(email="c@example.com")
    )
