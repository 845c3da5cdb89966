"""GroupedCell and Bus.kv_step: one compare-and-set loop; concurrent steps share writes, keep arrival order,
and stay exact across replicas and with a stale cache."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus import Bus, KvEntry
from services.contracts import subjects as s
from services.state.cell import GroupedCell


def bump(current: bytes | None) -> tuple[bytes, int]:
    value = int(current or b"0") + 1
    return str(value).encode(), value


async def test_concurrent_steps_share_writes_and_each_gets_its_own_number(bus: Bus) -> None:
    cell = GroupedCell(bus, s.KV_SEQUENCES, "grouped")
    got = await asyncio.gather(*(cell.step(bump) for _ in range(40)))
    # Arrival order is kept: the n-th step saw the n-1 before it.
    assert got == list(range(1, 41))
    assert (await bus.kv_get(s.KV_SEQUENCES, "grouped"))[0] == b"40"
    # The point of the cell: 40 steps that arrived together, one or two round trips instead of 40.
    assert 1 <= cell.writes <= 2
    await cell.close()


async def test_two_cells_on_one_key_never_lose_or_repeat_a_number(bus: Bus) -> None:
    """Two cells stand for two routers: each caches its last write, and a lost race re-runs its group."""
    first, second = GroupedCell(bus, s.KV_SEQUENCES, "shared"), GroupedCell(bus, s.KV_SEQUENCES, "shared")
    got = await asyncio.gather(*(cell.step(bump) for _ in range(25) for cell in (first, second)))
    assert sorted(got) == list(range(1, 51))
    assert (await bus.kv_get(s.KV_SEQUENCES, "shared"))[0] == b"50"
    # A write by someone else between groups: the cached revision is stale and refused, then re-read.
    await bus.kv_update(s.KV_SEQUENCES, "shared", lambda _: b"100")
    assert await first.step(bump) == 101
    await first.close()
    await second.close()


async def test_a_failing_step_fails_alone_and_leaving_the_key_writes_nothing(bus: Bus) -> None:
    cell = GroupedCell(bus, s.KV_SEQUENCES, "mixed")

    def broken(current: bytes | None) -> tuple[bytes, int]:
        raise ValueError("no decision")

    def peek(current: bytes | None) -> tuple[None, bytes | None]:
        return None, current

    results = await asyncio.gather(
        cell.step(bump), cell.step(broken), cell.step(bump), cell.step(peek), return_exceptions=True
    )
    assert results[0] == 1 and isinstance(results[1], ValueError) and results[2] == 2
    assert results[3] == b"2"  # saw the value the steps before it left
    writes = cell.writes
    assert await cell.update(lambda current: None) == b"2"
    assert cell.writes == writes  # nothing changed: nothing written
    assert await cell.update(lambda current: b"7") == b"7"
    await cell.close()


async def test_a_storage_failure_reaches_every_waiter_of_the_group(bus: Bus) -> None:
    """Nobody gets a number that was not stored: a refused write fails the whole group."""
    cell = GroupedCell(bus, "no_such_bucket", "n")
    results = await asyncio.gather(*(cell.step(bump) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, Exception) for result in results)
    with pytest.raises(Exception):  # noqa: B017 - nats-py's own "bucket not found" error
        await cell.step(bump)
    await cell.close()


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
