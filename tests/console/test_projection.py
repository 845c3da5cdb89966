"""The read model follows the timeline stream and the tickets bucket, idempotently, and rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from services.common.bus import Bus
from services.common.config import BusConfig
from services.console.app import rebuild
from services.console.projection import Projection
from services.console.store import Store
from services.contracts import subjects as s
from tests.console.conftest import NOW, config, entry, make_ticket, put_ticket, record
from tests.support import until


async def test_events_once_tickets_latest_and_deletes_follow(bus: Bus, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "model.sqlite3"))
    projection = Projection(bus, store, "console-test")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(projection.follow_timeline(stop)),
        asyncio.create_task(projection.follow_tickets(stop)),
    ]
    try:
        first = entry("request_received", "SR-1001", NOW, "email from jane")
        await record(bus, first)
        # The same event republished under another Nats-Msg-Id (a producer retry that escaped dedupe).
        await bus.publish(s.timeline_subject("acme"), first, msg_id="another-id")
        await record(bus, entry("routed", "SR-1001", NOW + timedelta(seconds=1), "Dispatched to alice"))
        await until(lambda: projection.events_seen == 3)
        assert [e.kind for e in store.ticket_events("SR-1001")] == ["request_received", "routed"]

        await put_ticket(bus, make_ticket())
        await put_ticket(bus, make_ticket(status="accepted", accepted_at=NOW + timedelta(minutes=5)))
        await until(lambda: (t := store.ticket("SR-1001")) is not None and t.status == "accepted")
        # An older revision arriving late never overwrites a newer one.
        store.put_tickets([(1, make_ticket())])
        assert store.ticket("SR-1001").status == "accepted"  # type: ignore[union-attr]

        kv = await bus.kv(s.KV_TICKETS)
        await kv.delete("SR-1001")
        await until(lambda: store.ticket("SR-1001") is None)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        store.close()


async def test_unreadable_entries_are_counted_and_skipped(bus: Bus, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "model.sqlite3"))
    projection = Projection(bus, store, "console-test")
    stop = asyncio.Event()
    task = asyncio.create_task(projection.follow_timeline(stop))
    try:
        await bus.publish_bytes(s.timeline_subject("acme"), b"{not json", msg_id="junk")
        await record(bus, entry("note", "SR-1", NOW, "after the junk"))
        await until(lambda: projection.events_seen == 1 and projection.unreadable == 1)
        await until(lambda: store.counts() == (1, 0))
    finally:
        stop.set()
        await task
        store.close()


async def test_rebuild_replays_everything_into_a_fresh_model(
    bus: Bus, service_bus_config: Callable[[str], BusConfig], tmp_path: Path
) -> None:
    # As the console's own bus user: it may drop and recreate its durable consumer, read tickets.
    cfg = config(tmp_path, service_bus_config("console"))
    for i in range(50):
        await record(bus, entry("note", f"SR-{1000 + i % 5}", NOW + timedelta(seconds=i), f"note {i}"))
    for i in range(5):
        await put_ticket(bus, make_ticket(f"SR-{1000 + i}"))
    assert await rebuild(cfg) == (50, 5)
    # Again: the old model and consumer are dropped, the same model comes back.
    assert await rebuild(cfg) == (50, 5)
    store = Store(cfg.database)
    try:
        assert len(store.ticket_events("SR-1003")) == 10
    finally:
        store.close()
