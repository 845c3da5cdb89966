"""services.common.kvview against a real nats-server: concurrent callers share one complete snapshot."""

from __future__ import annotations

import asyncio

from services.common.bus import Bus
from services.common.kvview import KvView, snapshot
from services.contracts import subjects as s
from tests.support import until

STREAM = f"KV_{s.KV_CONTACTS}"


async def consumers(bus: Bus) -> int:
    info = await bus.js.stream_info(STREAM)
    return info.state.consumer_count or 0


async def test_concurrent_callers_see_one_complete_snapshot_and_one_consumer(bus: Bus) -> None:
    kv = await bus.kv(s.KV_CONTACTS)
    for n in range(300):
        await kv.put(f"view.k{n}", str(n).encode())
    await kv.put("other.k", b"x")  # outside the prefix
    view: KvView[int] = KvView(bus, s.KV_CONTACTS, "view.>", int)
    try:
        # Sixteen handlers asking at once (as the notifier's replies consumer does at start).
        sizes = await asyncio.gather(*(view_size(view) for _ in range(16)))
        assert sizes == [300] * 16
        assert await consumers(bus) == 1
        await kv.delete("view.k0")
        await kv.put("view.k300", b"300")
        await until(lambda: "view.k0" not in view.items and "view.k300" in view.items, 2, "the view followed")
        assert "view.k0" not in view.items and view.items["view.k300"] == 300
    finally:
        await view.close()
    assert await consumers(bus) == 0  # the watch's consumer is deleted, not left to expire


async def view_size(view: KvView[int]) -> int:
    await view.ensure()
    return len(view.items)


async def test_snapshot_reads_once_and_leaves_no_consumer(bus: Bus) -> None:
    assert await snapshot(bus, s.KV_CONTACTS, "snap.>", bytes) == {}  # nothing there yet: no wait
    kv = await bus.kv(s.KV_CONTACTS)
    await kv.put("snap.a", b"1")
    await kv.put("snap.b", b"2")
    await kv.put("elsewhere", b"3")
    await kv.delete("snap.b")
    for _ in range(50):  # more than any test polls; each call cleans up after itself
        assert await snapshot(bus, s.KV_CONTACTS, "snap.>", bytes) == {"snap.a": b"1"}
    assert await consumers(bus) == 0
