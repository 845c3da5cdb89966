"""Process lifecycle: run `main(cfg, stop=...)` until SIGINT/SIGTERM, then let it shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.common import logs
from services.common.config import ConfigError

C = TypeVar("C")
log = logging.getLogger(__name__)


def run(
    service: str,
    load_config: Callable[[], C],
    main: Callable[..., Awaitable[None]],
    *,
    uvloop: bool = False,
) -> None:
    """Entry point used by every `__main__.py`. `uvloop=True` runs on uvloop's event loop (opt-in, for
    a service whose benchmark shows it faster)."""
    logs.setup(service)
    try:
        cfg = load_config()
    except (ConfigError, OSError) as exc:
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(cfg, stop=stop)

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory(uvloop)) as loop:
        loop.run(runner())
    log.info("stopped")


def _loop_factory(uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not uvloop:
        return None  # asyncio's own loop
    import uvloop as fast  # imported only by the services that ask for it

    return fast.new_event_loop
