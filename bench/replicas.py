"""Replicas sharing one durable consumer: router decisions/s and notifier dispatches/s with 1 and 2 processes.

Each measurement runs on a fresh nats-server with only the service under test on the bus, fed straight
through JetStream: the router gets ServiceRequests and is done when its durable has acked them all;
the notifier gets DispatchTicket commands and is done when the counting sink (bench/sink.py) has taken
one tech SMS for each (exactly one: a second would be a doubled send). Rounds alternate 1, 2, 1, 2 so
the load of a shared machine falls on both counts alike; the median and range of each are reported.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from bench import endtoend, stack
from bench.proc import cpu_seconds
from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.process import ROOT, ChildProcess
from services.contracts import DispatchTicket, ServiceRequest
from services.contracts import subjects as s
from services.contracts.requests import Sender
from services.policy.decide import decide
from services.policy.load import load_policy
from services.router import routing as r
from services.state.tickets import TicketStore

ROUTER_REQUESTS = int(os.environ.get("BENCH_ROUTER_REQUESTS", "2000"))
NOTIFIER_DISPATCHES = int(os.environ.get("BENCH_NOTIFIER_DISPATCHES", "1000"))
ROUNDS = int(os.environ.get("BENCH_REPLICA_ROUNDS", "2"))
COUNTS = (1, 2)
WINDOW = 256  # publishes in flight at once while feeding the backlog
DEADLINE = 120.0


async def _publish_all(bus: Bus, items: list[tuple[str, msgspec.Struct, str]]) -> None:
    for start in range(0, len(items), WINDOW):
        await asyncio.gather(
            *(bus.publish(subj, msg, msg_id=mid) for subj, msg, mid in items[start : start + WINDOW])
        )


async def _store_tickets(bus: Bus, items: list[tuple[str, msgspec.Struct, str]]) -> None:
    """As the router does before it publishes a dispatch: the notifier acts on the ticket as stored."""
    store = TicketStore(bus)
    tickets = [msg.ticket for _, msg, _ in items if isinstance(msg, DispatchTicket)]
    for start in range(0, len(tickets), WINDOW):
        await asyncio.gather(*(store.create(ticket) for ticket in tickets[start : start + WINDOW]))


async def _settled(bus: Bus, stream: str, durable: str) -> bool:
    info = await bus.js.consumer_info(stream, durable)
    return not (info.num_pending or 0) and not (info.num_ack_pending or 0)


async def _until(done: Callable[[], Awaitable[bool]]) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await done():
            return True
        await asyncio.sleep(0.05)
    return False


def _requests(n: int) -> list[tuple[str, msgspec.Struct, str]]:
    run = uuid.uuid4().hex[:8]
    items: list[tuple[str, msgspec.Struct, str]] = []
    for i in range(n):
        req = ServiceRequest(
            id=f"bench-{run}-{i}",
            channel="email",
            received_at=datetime.now(UTC),
            sender=Sender(email=endtoend.EMAIL_SENDER, name="Jane Roe"),
            recipient="support@frontdesk.test",
            subject=f"Printer on floor {i % 5} jammed ({run} {i})",
            body="The printer shows error 50.4 after every third page.",
        )
        items.append((s.request_subject("email"), req, req.id))
    return items


def _dispatches(n: int) -> list[tuple[str, msgspec.Struct, str]]:
    """Premium emergencies: each is dispatched or paged at once, whatever the clock says: one tech SMS."""
    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    now = datetime.now(UTC)
    decision, _ = decide(policy, email=endtoend.EMAIL_SENDER, phone=None, at=now, emergency=True)
    items: list[tuple[str, msgspec.Struct, str]] = []
    for i in range(n):
        req = ServiceRequest(
            id=f"bench-dispatch-{i}",
            channel="email",
            received_at=now,
            sender=Sender(email=endtoend.EMAIL_SENDER, name="Jane Roe"),
            recipient="support@frontdesk.test",
            subject=f"E2EM{i:06d} server down",
            body="The MES server is down on the plant floor.",
        )
        ticket = r.open_ticket(r.ticket_number(100_000 + i), req, decision)
        command = DispatchTicket(id=f"dispatch:{ticket.number}", ticket=ticket)
        items.append((s.notify_subject("dispatch_ticket"), command, command.id))
    return items


async def feed_router(nats_url: str, n: int) -> bool:
    """Publish `n` requests and wait until the router's durable has acked them all (the profile's load)."""
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-feed")
    try:
        await _publish_all(bus, _requests(n))
        return await _until(lambda: _settled(bus, s.STREAM_REQUESTS, "router"))
    finally:
        await bus.close()


async def _measure(service: str, count: int, items: list[tuple[str, msgspec.Struct, str]]) -> dict[str, Any]:
    """One round: `count` processes of `service` on a fresh bus, the backlog published, time to done."""
    with stack.run() as run:
        env, ports = endtoend.twilio_side("sink", run.nats.url, run.tmp, run.logs)
        await endtoend.topology(run.nats.url)
        procs: list[ChildProcess] = []
        try:
            sink = None
            if service == "notifier":
                sink_procs = endtoend.start_twilio("sink", env, ports, run.logs)
                procs.extend(sink_procs.values())
                sink_procs["sink"].wait_port(ports["twilio"])
                sink_procs["relay"].wait_port(ports["relay"])
                sink = f"http://127.0.0.1:{ports['twilio']}"
            workers: list[ChildProcess] = []
            for i in range(count):
                proc, port = stack.replica(service, f"{service}-{i}", env, run.logs)
                procs.append(proc)
                workers.append(proc)
                proc.wait_port(port)
            bus = await Bus.connect(BusConfig(url=(run.nats.url,)), "bench-replicas")
            try:
                await _store_tickets(bus, items)  # not timed: the router's part
                pids = [p.pid for p in workers] + ([run.nats_pid] if run.nats_pid else [])
                cpu0 = [cpu_seconds(pid) for pid in pids]
                t0 = time.perf_counter()
                await _publish_all(bus, items)
                if sink is None:
                    finished = await _until(lambda: _settled(bus, s.STREAM_REQUESTS, "router"))
                    seconds = time.perf_counter() - t0
                    effects = len(items) if finished else -1
                else:
                    async with httpx.AsyncClient(base_url=sink, timeout=10) as client:

                        async def sent() -> int:
                            return int((await client.get("/api/count")).json()["created"])

                        async def all_sent() -> bool:
                            return await sent() >= len(items)

                        finished = await _until(all_sent)
                        seconds = time.perf_counter() - t0
                        await asyncio.sleep(1.0)  # a doubled send would land after the last first one
                        effects = await sent()
                cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu0, strict=True)]
            finally:
                await bus.close()
        finally:
            for proc in reversed(procs):
                proc.stop()
    per_item = 1000 / max(len(items), 1)
    return {
        "replicas": count,
        "items": len(items),
        "finished": finished,
        "effects": effects,
        "seconds": round(seconds, 2),
        "per_s": round(len(items) / seconds, 1),
        "cpu_ms_each": round(sum(cpu[:count]) * per_item, 2),
        "nats_cpu_ms_each": round(cpu[count] * per_item, 2) if len(cpu) > count else None,
    }


async def bench_replicas(service: str) -> dict[str, Any]:
    """1 and then 2 processes of `service` ("router" or "notifier"), ROUNDS times, interleaved."""
    rounds: dict[int, list[dict[str, Any]]] = {count: [] for count in COUNTS}
    for _ in range(ROUNDS):
        for count in COUNTS:
            items = _requests(ROUTER_REQUESTS) if service == "router" else _dispatches(NOTIFIER_DISPATCHES)
            rounds[count].append(await _measure(service, count, items))
    result: dict[str, Any] = {
        "unit": "decisions/s" if service == "router" else "tech SMS/s",
        "rounds": rounds,
    }
    for count, runs in rounds.items():
        rates = [run["per_s"] for run in runs]
        result[f"x{count}_per_s"] = round(statistics.median(rates), 1)
        result[f"x{count}_range"] = [min(rates), max(rates)]
        result[f"x{count}_cpu_ms_each"] = round(statistics.median(run["cpu_ms_each"] for run in runs), 2)
    result["ratio_2_to_1"] = round(
        statistics.median(b["per_s"] / a["per_s"] for a, b in zip(rounds[1], rounds[2], strict=True)), 2
    )
    result["complete"] = all(
        run["finished"] and run["effects"] == run["items"] for runs in rounds.values() for run in runs
    )
    return result
