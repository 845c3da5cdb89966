"""A running console (its main() on a ManualClock) against a real nats-server, with two users."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.natsserver import free_port
from services.console.app import main
from services.console.config import ConsoleConfig
from services.console.users import User, format_users
from services.contracts import Ticket, TimelineEntry
from services.contracts import subjects as s
from tests.notifier import stack as notifier_stack
from tests.support import serving, until

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
NOW = notifier_stack.NOW  # Monday 09:00 in Chicago
REASON = "Sender matched client Acme Manufacturing by contact; their tier is premium."
USERS = {"dina": ("dispatcher", "dina-password"), "vera": ("viewer", "vera-password")}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    url: str
    cfg: ConsoleConfig
    clock: ManualClock
    bus: Bus

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, name: str, password: str | None = None) -> httpx.Response:
    form = await client.get("/login")
    token = csrf_of(form.text)
    return await client.post(
        "/login", data={"username": name, "password": password or USERS[name][1], "csrf": token}
    )


def make_ticket(number: str = "SR-1001", **changes: Any) -> Ticket:
    """The notifier tests' Acme ticket (dispatched to alice, due in 4 h), with bob on call."""
    base = notifier_stack.make_ticket(number)
    decision = msgspec.structs.replace(base.decision, oncall="bob", reasons=(REASON,))
    ticket = msgspec.structs.replace(
        base,
        decision=decision,
        status="dispatched",
        response_due=decision.response_due,
        request_id=f"req-{number}",
    )
    return msgspec.structs.replace(ticket, **changes)


async def put_ticket(bus: Bus, ticket: Ticket) -> None:
    kv = await bus.kv(s.KV_TICKETS)
    await kv.put(s.kv_key(ticket.number), msgspec.json.encode(ticket))


async def record(bus: Bus, entry: TimelineEntry) -> None:
    await bus.publish(s.timeline_subject(entry.client_id), entry, msg_id=entry.id)


def entry(kind: str, number: str, at: datetime, text: str, actor: str = "system") -> TimelineEntry:
    return TimelineEntry(
        id=f"{kind}.{number}.{at.timestamp()}",
        at=at,
        client_id="acme",
        kind=kind,  # type: ignore[arg-type]
        text=text,
        service="test",
        ticket_number=number,
        actor=actor,
    )


async def until_listed(console: Console, number: str, timeout: float = 10.0) -> None:
    """The projection has the ticket (the API is the read model)."""
    async with console.client() as client:
        await sign_in(client, "vera")

        async def listed() -> bool:
            return (await client.get(f"/api/tickets/{number}")).status_code == 200

        await until(listed, timeout, f"{number} in the console")


@functools.cache
def users_file() -> str:
    """USERS as a users file, hashed with argon2's cheapest parameters.

    A check costs what the parameters in the hash say: the console's own (a quarter second of CPU each)
    would make every sign-in of these tests that slow. test_users.py checks the real ones.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    users = {
        name: User(name=name, role=role, hash=cheap.hash(password))  # type: ignore[arg-type]
        for name, (role, password) in USERS.items()
    }
    return format_users(users)


def config(tmp_path: Path, bus_config: BusConfig, **overrides: object) -> ConsoleConfig:
    users = tmp_path / "users"
    users.write_text(users_file(), encoding="utf-8")
    users.chmod(0o600)
    fields: dict[str, object] = {
        "port": free_port(),
        "users": str(users),
        "session_secret": Secret("s" * 40 + "-test-session"),
        "feed_secret": Secret("f" * 40 + "-test-feed"),
        "data_dir": str(tmp_path / "console"),
        "replica": "test",
        "cookie_secure": False,
        "policy": str(POLICY),
        "bus": bus_config,
        "login_failures": 3,
    }
    fields.update(overrides)
    return ConsoleConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def console(bus: Bus, bus_config: BusConfig, tmp_path: Path) -> AsyncIterator[Console]:
    cfg = config(tmp_path, bus_config)
    clock = ManualClock(NOW)
    started = asyncio.Event()
    async with serving(main, cfg, clock=clock, started=started):
        await asyncio.wait_for(started.wait(), 15)
        yield Console(url=f"http://127.0.0.1:{cfg.port}", cfg=cfg, clock=clock, bus=bus)
