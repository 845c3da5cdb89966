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
) -> None:
    """Entry point used by every `__main__.py`."""
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

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner())
    log.info("stopped")
