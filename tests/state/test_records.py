"""Typed records: a transition given the entry last seen writes without a read, and is never fooled by it."""

from __future__ import annotations

import msgspec

from services.common.bus import Bus, KvEntry
from services.contracts import subjects as s
from services.state.records import Written, transition

COUNT = msgspec.json.Decoder(int)
KEY = "count.t"


def bump(current: int | None) -> tuple[int, int | None]:
    return (current or 0) + 1, current


def look(current: int | None) -> tuple[None, int | None]:
    return None, current


async def test_a_transition_at_a_known_revision_skips_the_read_and_a_stale_one_is_decided_again(
    bus: Bus,
) -> None:
    created, before = await transition(bus, s.KV_WINDOWS, KEY, COUNT, bump, seen=KvEntry(None, 0))
    assert (created.written, before, created.value) == (True, None, b"1")
    second, before = await transition(bus, s.KV_WINDOWS, KEY, COUNT, bump, seen=created)
    assert (before, second.value, second.revision > created.revision) == (1, b"2", True)
    await bus.kv_update(s.KV_WINDOWS, KEY, lambda _: b"10")  # another writer (a replica, say)
    # Our remembered entry is stale: the server refuses the write and the step runs on what is stored.
    third, before = await transition(bus, s.KV_WINDOWS, KEY, COUNT, bump, seen=second)
    assert (before, third.value) == (10, b"11")
    # A step that writes nothing is checked by no server: it is decided again on a read.
    _, seen_value = await transition(bus, s.KV_WINDOWS, KEY, COUNT, look, seen=created)
    assert seen_value == 11
    # "Expected new" on a key that exists: the create is refused and the step runs on the stored value.
    fourth, before = await transition(bus, s.KV_WINDOWS, KEY, COUNT, bump, seen=KvEntry(None, 0))
    assert (before, fourth.value) == (11, b"12")


def test_written_keeps_only_written_entries_hands_each_out_once_and_empties_when_full() -> None:
    known = Written(limit=2)
    known.keep("a", KvEntry(b"1", 1))  # read, not written: no server checked it
    assert known.take("a") is None
    known.keep("a", KvEntry(b"1", 1, written=True))
    assert known.take("a") == KvEntry(b"1", 1, written=True)
    assert known.take("a") is None
    known.keep("a", KvEntry(b"1", 1, written=True))
    known.keep("b", KvEntry(b"2", 2, written=True))
    known.keep("c", KvEntry(b"3", 3, written=True))  # full: the others are forgotten, costing a read
    assert (known.take("a"), known.take("b"), known.take("c")) == (None, None, KvEntry(b"3", 3, written=True))
