"""The console's budgets: projection rate, Now page with 10,000 tickets, 90-day report over 100,000 events.

The projection reads a real nats-server and is compared with a bare pull consumer (fetch and ack only)
measured in the same run. The pages are served over real HTTP by the console's own app, from a read
model filled directly (building 100,000 events through NATS first would only time the publisher).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig
from services.common.http import HttpServer
from services.common.natsserver import free_port
from services.common.process import ROOT
from services.console.config import ConsoleConfig
from services.console.desk import Desk
from services.console.projection import BATCH, Projection
from services.console.store import Store
from services.console.users import User, hash_password
from services.console.web import Console, build_app
from services.contracts import Decision, Sender, Ticket, TimelineEntry
from services.contracts import subjects as s
from services.contracts.commands import DeskCommand
from services.policy.load import load_policy

PROJECTED = int(os.environ.get("BENCH_CONSOLE_EVENTS", "20000"))
HISTORY_EVENTS = 100_000
TICKETS = 12_500  # 8 events each: 100,000 events over 90 days, of which 40 tickets are still open
OPEN = 40
PAGE_ROUNDS = int(os.environ.get("BENCH_CONSOLE_ROUNDS", "30"))
END = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
START = END - timedelta(days=90)
TECHS = ("alice", "bob", "carol")
CLIENTS = (("acme", "Acme Manufacturing", "premium"), ("globex", "Globex Logistics", "complimentary"))


def history(seed: int = 7) -> tuple[list[tuple[int, Ticket]], list[tuple[int, TimelineEntry]]]:
    """Synthetic but shaped like the desk: business-hours arrivals, minutes to accept, hours to resolve."""
    rng = random.Random(seed)
    tickets: list[tuple[int, Ticket]] = []
    events: list[tuple[int, TimelineEntry]] = []
    span = (END - START).total_seconds()
    for i in range(TICKETS):
        number = f"SR-{10_000 + i}"
        opened = START + timedelta(seconds=span * i / TICKETS + rng.uniform(0, 600))
        client_id, name, tier = CLIENTS[i % 2]
        tech = TECHS[rng.randrange(3)]
        due = opened + timedelta(hours=1 if tier == "premium" else 4)
        accepted = opened + timedelta(minutes=rng.expovariate(1 / 20))
        resolved = accepted + timedelta(minutes=rng.expovariate(1 / 120))
        still_open = i >= TICKETS - OPEN
        decision = Decision(
            client_id=client_id,
            client_name=name,
            tier=tier,
            priority="normal",
            in_hours=True,
            disposition="dispatch",
            notify_at=opened,
            response_due=due,
            assignee=tech,
            oncall="bob",
        )
        ticket = Ticket(
            number=number,
            request_id=f"req-{i}",
            client_id=client_id,
            channel="email",
            contact=Sender(email=f"user{i % 50}@{client_id}.example"),
            subject=f"Request {i}",
            summary="Printer jams",
            opened_at=opened,
            decision=decision,
            status="dispatched" if still_open else "resolved",
            assignee=tech,
            response_due=due,
            accepted_at=None if still_open else accepted,
            resolved_at=None if still_open else resolved,
        )
        tickets.append((i + 1, ticket))
        moments = [
            ("request_received", opened),
            ("routed", opened),
            ("ack_sent", opened),
            ("tech_notified", opened + timedelta(seconds=2)),
            ("tech_accepted", accepted),
            ("eta_given", accepted),
            ("note", accepted),
            ("resolved", resolved),
        ]
        for kind, at in moments:
            events.append(
                (
                    len(events) + 1,
                    TimelineEntry(
                        id=f"{kind}.{number}",
                        at=at,
                        client_id=client_id,
                        kind=kind,  # type: ignore[arg-type]
                        text=f"{kind} {number}",
                        service="bench",
                        ticket_number=number,
                        actor=tech,
                    ),
                )
            )
    return tickets, events


async def publish_all(bus: Bus, entries: list[TimelineEntry]) -> None:
    for i in range(0, len(entries), 500):
        chunk = entries[i : i + 500]
        await asyncio.gather(*(bus.publish(s.timeline_subject(e.client_id), e, msg_id=e.id) for e in chunk))


async def bare_consume(bus: Bus, count: int) -> float:
    """The baseline: the same durable pull, fetch and ack, no decoding, no SQLite."""
    sub = await bus.js.pull_subscribe(s.TIMELINE_ALL, durable="bench-bare", stream=s.STREAM_TIMELINE)
    seen, t0 = 0, time.perf_counter()
    while seen < count:
        for msg in await sub.fetch(BATCH, timeout=5):
            await msg.ack()
            seen += 1
    seconds = time.perf_counter() - t0
    await sub.unsubscribe()
    return seconds


async def project(bus: Bus, tmp: Path, count: int) -> float:
    store = Store(str(tmp / "projection.sqlite3"))
    projection = Projection(bus, store, "bench-console")
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.create_task(projection.follow_timeline(stop))
    while projection.events_seen < count:
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - t0
    stop.set()
    await task
    assert store.counts()[0] == count
    store.close()
    return seconds


async def bench_projection(nats_url: str, tmp: Path) -> dict[str, Any]:
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-console")
    try:
        await bus.ensure_topology()
        _, events = history(seed=11)
        await publish_all(bus, [e for _, e in events[:PROJECTED]])
        bare = await bare_consume(bus, PROJECTED)
        real = await project(bus, tmp, PROJECTED)
    finally:
        await bus.close()
    return {
        "events": PROJECTED,
        "bare_events_per_s": round(PROJECTED / bare),
        "projection_events_per_s": round(PROJECTED / real),
        "ratio": round(bare / real, 3),
        "budget": ">= 1000 events/s",
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def timed(client: httpx.AsyncClient, path: str, rounds: int) -> dict[str, float]:
    await client.get(path)  # warm: templates compiled, SQLite pages cached
    took = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        answer = await client.get(path)
        took.append(time.perf_counter() - t0)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code}")
    return {
        "p50_ms": round(percentile(took, 0.5) * 1000, 1),
        "p90_ms": round(percentile(took, 0.9) * 1000, 1),
    }


async def bench_pages(tmp: Path) -> dict[str, Any]:
    store = Store(str(tmp / "history.sqlite3"))
    tickets, events = history()
    t0 = time.perf_counter()
    store.put_tickets(tickets)
    store.add_events(events)
    filled = time.perf_counter() - t0
    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    cfg = ConsoleConfig(port=free_port(), data_dir=str(tmp), cookie_secure=False, environment="development")

    async def refuse(subject: str, command: DeskCommand) -> None:
        raise RuntimeError("the benchmark takes no actions")

    console = Console(
        cfg,
        policy,
        Desk(policy, store),
        users={"ops": User(name="ops", role="viewer", hash=hash_password("ops"))},
        clock=ManualClock(END),
        publish=refuse,
        session_secret="b" * 40,
        feed_secret="f" * 40,
    )
    server = HttpServer(build_app(console), "127.0.0.1", cfg.port)
    await server.start()
    try:
        session = {"Cookie": f"fd_console={console.signer.issue('ops', 'viewer')}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cfg.port}", timeout=30, headers=session
        ) as client:
            bare = await timed(client, "/healthz", PAGE_ROUNDS)
            now_page = await timed(client, "/", PAGE_ROUNDS)
            query = f"from={START.date()}&to={(END - timedelta(days=1)).date()}"
            report_api = await timed(client, f"/api/report?{query}", max(5, PAGE_ROUNDS // 3))
            report_page = await timed(client, f"/report?{query}", max(5, PAGE_ROUNDS // 3))
            figures = msgspec.json.decode((await client.get(f"/api/report?{query}")).content)
    finally:
        await server.stop()
        store.close()
    return {
        "history": {"tickets": len(tickets), "events": len(events), "open": OPEN, "fill_s": round(filled, 2)},
        "bare_healthz": bare,
        "now_page": {**now_page, "budget": "< 100 ms"},
        "report_90_days_api": {**report_api, "tickets": figures["requests"], "budget": "< 1000 ms"},
        "report_90_days_page": {**report_page, "budget": "< 1000 ms"},
    }


async def bench_console(nats_url: str, tmp: Path) -> dict[str, Any]:
    pages = await bench_pages(tmp)
    return {
        "console_projection": await bench_projection(nats_url, tmp),
        **{f"console_{k}": v for k, v in pages.items()},
    }
