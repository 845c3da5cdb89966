"""Console service: the projection into SQLite, the web pages, and desk actions published as commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from datetime import UTC, datetime

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.config import ConfigError
from services.common.http import HttpServer
from services.console.config import ConsoleConfig
from services.console.desk import Desk
from services.console.projection import Projection, forget
from services.console.store import Store
from services.console.users import User, hash_password, load_users
from services.console.web import Console, build_app
from services.contracts.commands import DeskCommand
from services.policy.load import load_policy

log = logging.getLogger(__name__)
DEV_USER = "ops"  # development only, printed by `make run`: ops / ops, a dispatcher


def users_of(cfg: ConsoleConfig) -> dict[str, User]:
    if cfg.users:
        users = load_users(cfg.users)
        if not users:
            raise ConfigError(f"FRONTDESK_CONSOLE_USERS: {cfg.users} lists no users")
        return users
    if cfg.environment != "development":
        raise ConfigError("FRONTDESK_CONSOLE_USERS: a users file is required outside development")
    return {DEV_USER: User(name=DEV_USER, role="dispatcher", hash=hash_password(DEV_USER))}


def secret_or_random(value: str) -> str:
    """Development may leave secrets unset: a random one per process (sessions end with it)."""
    return value or secrets.token_urlsafe(32)


async def main(
    cfg: ConsoleConfig,
    *,
    stop: asyncio.Event,
    clock: Clock | None = None,
    started: asyncio.Event | None = None,
) -> None:
    clock = clock or SystemClock()
    policy = load_policy(cfg.policy)
    users = users_of(cfg)
    store = Store(cfg.database)
    bus = await Bus.connect(cfg.bus, "console", stop=stop)
    projection = Projection(bus, store, cfg.durable)

    async def publish(subject: str, command: DeskCommand) -> None:
        # The form's action id is the Nats-Msg-Id: a double submit is stored once.
        await bus.publish(subject, command, msg_id=f"desk.{command.id}")

    console = Console(
        cfg,
        policy,
        Desk(policy, store),
        users=users,
        clock=clock,
        publish=publish,
        session_secret=secret_or_random(cfg.session_secret.reveal()),
        feed_secret=secret_or_random(cfg.feed_secret.reveal()),
    )
    server = HttpServer(build_app(console), cfg.host, cfg.port)
    tasks = [
        asyncio.create_task(projection.follow_timeline(stop)),
        asyncio.create_task(projection.follow_tickets(stop)),
    ]
    try:
        await server.start()
        log.info("console listening", extra={"port": server.port})
        if started is not None:
            started.set()
        await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        await bus.close()
        store.close()


async def rebuild(cfg: ConsoleConfig, *, timeout: float = 600.0) -> tuple[int, int]:
    """Drop this replica's read model and durable consumer, replay everything, stop when caught up."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(cfg.database + suffix)
    store = Store(cfg.database)
    stop = asyncio.Event()
    bus = await Bus.connect(cfg.bus, "console-rebuild")
    try:
        await forget(bus, cfg.durable)
        projection = Projection(bus, store, cfg.durable)
        tasks = [
            asyncio.create_task(projection.follow_timeline(stop)),
            asyncio.create_task(projection.follow_tickets(stop)),
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        began = datetime.now(UTC)
        while loop.time() < deadline:
            await asyncio.sleep(0.2)
            if projection.tickets_ready.is_set() and await projection.pending() == 0:
                break
        else:
            raise TimeoutError(f"not caught up after {timeout} s")
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("rebuilt", extra={"count": projection.events_seen, "since": began.isoformat()})
        return store.counts()
    finally:
        stop.set()
        await bus.close()
        store.close()
