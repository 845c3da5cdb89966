"""The router service: wiring (consumer, timers, policy watcher, health) around its workflow."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import msgspec

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.consumer import Consumer, ConsumerSpec
from services.common.http import HttpServer, health_app
from services.common.metrics import follow_storage, watch_consumer_lag
from services.contracts import subjects as s
from services.policy.load import PolicyError, load_policy
from services.router import routing as r
from services.router.config import RouterConfig
from services.router.workflow import Incoming, Router

log = logging.getLogger(__name__)
__all__ = ["Router", "main", "watch_policy"]


async def watch_policy(router: Router, path: str, stop: asyncio.Event, *, poll: float = 2.0) -> None:
    """Reload the policy on SIGHUP or when the file changes; an invalid file keeps the old policy."""
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    last = _mtime(path)
    while not stop.is_set():
        # Wake on SIGHUP, on stop (a shutdown must not wait out the poll) or after `poll` seconds.
        await _first_of((reload, stop), poll)
        if stop.is_set():
            break
        current = _mtime(path)
        if not reload.is_set() and current == last:
            continue
        reload.clear()
        last = current
        try:
            router.policy = load_policy(path)
        except (PolicyError, OSError) as exc:
            log.error("policy reload refused; keeping the previous policy", extra={"error": str(exc)})
            continue
        log.info("policy reloaded")


async def _first_of(events: tuple[asyncio.Event, ...], timeout: float) -> None:
    """Return when any of `events` is set, or after `timeout` seconds."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


async def main(cfg: RouterConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    policy = load_policy(cfg.policy)
    bus = await Bus.connect(cfg.bus, "router", stop=stop)
    http: HttpServer | None = None
    router: Router | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        await bus.ensure_topology(stop=stop)
        router = Router(bus, policy, clock or SystemClock())
        decoder = msgspec.json.Decoder(Incoming)
        # Related requests (a reply and its ticket, an amendment and its request) stay in order.
        consumer = Consumer(
            bus,
            ConsumerSpec(s.STREAM_REQUESTS, cfg.durable, s.REQUESTS_ALL),
            decoder.decode,
            router.handle,
            lanes=r.lane_keys,
            width=cfg.concurrency,
        )
        follow_storage(router.metrics.registry, bus)
        http = HttpServer(
            health_app(
                lambda: bus.ready,
                lambda: {"tickets_opened": router.tickets_opened, "released": router.released},
                router.metrics.registry,
            ),
            cfg.host,
            cfg.http_port,
        )
        await http.start()
        tasks = [
            asyncio.create_task(consumer.run(stop)),
            asyncio.create_task(router.run_timers(stop, cfg.timer_poll)),
            asyncio.create_task(watch_policy(router, str(cfg.policy), stop)),
            asyncio.create_task(
                watch_consumer_lag(router.metrics, bus, [(s.STREAM_REQUESTS, cfg.durable)], stop)
            ),
        ]
        log.info("router ready", extra={"port": http.port})
        await stop.wait()
    finally:
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, cfg.timer_poll + 5)
        if http is not None:
            await http.stop()
        if router is not None:
            # Its watch and its hot-key writer end before the connection does.
            with contextlib.suppress(Exception):
                await router.close()
        await bus.close()
