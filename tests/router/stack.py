"""What the router's tests share: a running router, requests, and reads of what it published and stored."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from services.common.bus import Bus
from services.common.clock import Clock
from services.common.config import BusConfig
from services.common.kvview import snapshot
from services.contracts import Command, Sender, ServiceRequest, Ticket, TimelineEntry
from services.contracts import subjects as s
from services.router.app import main
from services.router.config import RouterConfig
from tests.support import serving, stream_messages
from tests.support import settled as drained

POLICY = str(Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml")
MONDAY_10 = datetime(2026, 11, 23, 16, tzinfo=UTC)  # 10:00 CST, in hours
FRIDAY_18 = datetime(2026, 11, 21, 0, tzinfo=UTC)  # 18:00 CST, after hours


def request(
    rid: str, *, email: str = "jane@acme.example", at: datetime = MONDAY_10, **kw: object
) -> ServiceRequest:
    return msgspec.structs.replace(
        ServiceRequest(
            id=rid, channel="email", received_at=at, sender=Sender(email=email), body="Printer jammed"
        ),
        **kw,
    )


@contextlib.asynccontextmanager
async def router(bus_config: BusConfig, clock: Clock | None = None) -> AsyncIterator[None]:
    cfg = RouterConfig(http_port=0, policy=POLICY, timer_poll=0.1, bus=bus_config)
    async with serving(main, cfg, clock=clock):
        yield


async def settled(bus: Bus) -> None:
    assert await drained(bus, ((s.STREAM_REQUESTS, "router"),), rounds=1, pause=0), "requests still pending"


async def commands(bus: Bus) -> list[tuple[str, Command]]:
    """Every notifier command published so far, with its Nats-Msg-Id (none is a valid answer)."""
    decoder = msgspec.json.Decoder(Command)
    return [
        ((msg.headers or {}).get("Nats-Msg-Id", ""), decoder.decode(msg.data or b""))
        for msg in await stream_messages(bus, s.STREAM_NOTIFY)
    ]


async def timeline(bus: Bus) -> list[TimelineEntry]:
    decoder = msgspec.json.Decoder(TimelineEntry)
    return [decoder.decode(msg.data or b"") for msg in await stream_messages(bus, s.STREAM_TIMELINE)]


async def ticket(bus: Bus, number: str) -> Ticket | None:
    raw, _ = await bus.kv_get(s.KV_TICKETS, number)
    return None if raw is None else msgspec.json.decode(raw, type=Ticket)


async def ticket_numbers(bus: Bus) -> list[str]:
    return sorted(await snapshot(bus, s.KV_TICKETS, ">", bytes))
