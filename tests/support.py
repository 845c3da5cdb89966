"""What tests share besides fixtures: polling a condition, waiting for consumers to drain, running main()."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import pytest
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


@dataclass(frozen=True)
class CommandLine:
    """A desk command's `main` as a test runs it, with `env` (and a call's own variables) over the test's
    environment; each run answers (exit status, stdout, stderr).

    `run` calls main() in this process, on its own event loop in a thread (a process start costs more
    than the command); `process` starts `python -m` main's package, whose __main__ calls it, as a
    person does.
    """

    main: Callable[[list[str]], int]
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0

    async def run(self, *args: str, **env: str) -> tuple[int, str, str]:
        for name, value in {**self.env, **env}.items():
            self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        status = await asyncio.wait_for(asyncio.to_thread(self.main, list(args)), self.timeout)
        out, err = self.capsys.readouterr()
        return status, out, err

    async def process(self, *args: str, **env: str) -> tuple[int, str, str]:
        package = self.main.__module__.rpartition(".")[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", package, *args, env={**os.environ, **self.env, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


def email_request(n: int) -> ServiceRequest:
    """A valid request numbered `n`, for tests of plumbing that only needs something to carry."""
    return ServiceRequest(
        id=f"req-{n}", channel="email", received_at=RECEIVED, sender=Sender(email="c@example.com")
    )
