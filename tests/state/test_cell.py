"""CasCell and Bus.kv_step: one compare-and-set loop, correct under contention and with a stale cache."""

from __future__ import annotations

import asyncio

from services.common.bus import Bus, KvEntry
from services.contracts import subjects as s
from services.state.cell import CasCell


def bump(current: bytes | None) -> bytes:
    return str(int(current or b"0") + 1).encode()


async def test_two_cells_on_one_key_never_lose_an_update(bus: Bus) -> None:
    """Two cells stand for two routers: each caches its own last write, the server refuses stale ones."""
    first, second = CasCell(bus, s.KV_SEQUENCES, "n"), CasCell(bus, s.KV_SEQUENCES, "n")
    got = await asyncio.gather(*(cell.update(bump) for _ in range(15) for cell in (first, second)))
    assert sorted(int(v or b"") for v in got) == list(range(1, 31))
    assert (await bus.kv_get(s.KV_SEQUENCES, "n"))[0] == b"30"


async def test_kv_step_says_whether_it_wrote_and_returns_the_answer_that_stood(bus: Bus) -> None:
    def create(current: bytes | None) -> tuple[bytes | None, str]:
        return (b"1", "created") if current is None else (None, "left")

    wrote, answer = await bus.kv_step(s.KV_ROUTER, "swap.a", create)
    assert wrote.written and wrote.value == b"1" and wrote.revision > 0 and answer == "created"
    left, answer = await bus.kv_step(s.KV_ROUTER, "swap.a", create)
    assert not left.written and left == KvEntry(b"1", wrote.revision) and answer == "left"
    # A stale `seen` (the key moved since) is refused by the server and re-read, not overwritten.
    await bus.kv_update(s.KV_ROUTER, "swap.a", lambda _: b"2")
    after, _ = await bus.kv_step(
        s.KV_ROUTER, "swap.a", lambda current: ((current or b"") + b"+", None), seen=wrote
    )
    assert after.value == b"2+"


async def test_kv_create_keeps_the_first_value(bus: Bus) -> None:
    results = await asyncio.gather(*(bus.kv_create(s.KV_ROUTER, "first", str(i).encode()) for i in range(8)))
    assert len(set(results)) == 1
    assert (await bus.kv_get(s.KV_ROUTER, "first"))[0] == results[0]
