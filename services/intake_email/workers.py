"""Worker processes of the SMTP intake: more cores on one port (SO_REUSEPORT), sharing nothing but NATS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType

import msgspec

from services.common import logs
from services.intake_email.config import SmtpConfig

log = logging.getLogger(__name__)
Main = Callable[..., Awaitable[None]]

# How often the primary looks for a worker that died, and a worker for a primary that died.
WATCH_INTERVAL = 1.0


class Workers:
    """The primary's extra workers (1 .. workers-1): started once it listens, restarted when one dies.

    Spawned rather than forked: the primary already runs an event loop and a NATS connection, which a
    forked child must not inherit. Each worker is a whole intake (its own bus connection and socket
    on the same port) except for the HTTP endpoints, which only the primary serves.
    """

    def __init__(self, cfg: SmtpConfig, main: Main) -> None:
        self.cfg = cfg
        self.main = main
        self._context = multiprocessing.get_context("spawn")
        self._procs: dict[int, SpawnProcess] = {}
        self._listening: dict[int, EventType] = {}

    @property
    def listening(self) -> int:
        """Workers alive and accepting connections (what the primary's /readyz reports)."""
        return sum(1 for i, proc in self._procs.items() if proc.is_alive() and self._listening[i].is_set())

    def start(self) -> None:
        for index in range(1, self.cfg.workers):
            self._start(index)

    def _start(self, index: int) -> None:
        listening = self._context.Event()
        proc = self._context.Process(
            target=serve,
            args=(self.main, self.cfg, index, os.getpid(), listening),
            name=f"intake_email-worker-{index}",
        )
        proc.start()
        self._procs[index] = proc
        self._listening[index] = listening

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart a worker that exited while the primary runs: its share of connections must not fail."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)
            for index, proc in list(self._procs.items()):
                if not stop.is_set() and not proc.is_alive():
                    log.warning(
                        "worker exited; restarting it", extra={"worker": index, "code": proc.exitcode}
                    )
                    self._start(index)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a worker finishes what it accepted, as the primary does), SIGKILL after `timeout`."""
        for proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs.values():
            await asyncio.to_thread(proc.join, timeout)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join)


def ensure_port_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) when anything listens on the port, with SO_REUSEPORT or without.

    The primary asks before binding: SO_REUSEPORT would otherwise let a second intake (a stale one,
    another stack) share the port silently instead of failing to start.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def serve(main: Main, cfg: SmtpConfig, index: int, primary: int, listening: EventType) -> None:
    """A worker process: the intake's `main` until SIGTERM/SIGINT or until the primary is gone."""
    logs.setup("intake_email")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        bound = asyncio.Event()
        orphaned = asyncio.create_task(_stop_when_orphaned(primary, stop))
        announced = asyncio.create_task(_announce(bound, listening))
        try:
            await main(msgspec.structs.replace(cfg, worker=index), stop=stop, listening=bound)
        finally:
            orphaned.cancel()
            announced.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


async def _announce(bound: asyncio.Event, listening: EventType) -> None:
    await bound.wait()
    listening.set()


async def _stop_when_orphaned(primary: int, stop: asyncio.Event) -> None:
    # A primary killed outright (SIGKILL) cannot stop its workers; one left behind would keep taking a
    # share of the port's connections with nobody supervising it.
    while os.getppid() == primary:
        await asyncio.sleep(WATCH_INTERVAL)
    log.warning("the primary process is gone; stopping")
    stop.set()
