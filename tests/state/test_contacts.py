"""Contact state: one key scheme, typed records, and admissions that store only what they allow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.common.bus import Bus
from services.contracts import subjects as s
from services.state.contacts import LAST_TOUCH, OPT_OUT, ContactState, LastTouch, OptOut
from services.state.records import Family
from tests.support import until

AT = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def test_keys_are_family_dot_id_and_kv_safe() -> None:
    assert OPT_OUT.key("+15550100") == s.kv_key("optout.+15550100")
    assert LAST_TOUCH.key("acme") == "touch.acme"
    assert OPT_OUT.bucket == s.KV_CONTACTS


async def test_records_round_trip_and_opt_out_reads_false_when_absent(bus: Bus) -> None:
    contacts = ContactState(bus)
    try:
        assert not await contacts.opted_out("+15550100")
        await contacts.put(OPT_OUT, "+15550100", OptOut(opted_out=True, at=AT))
        await until(lambda: contacts.opted_out("+15550100"), timeout=4.0)  # the view follows within a moment
        touch = LastTouch(text="done", ticket_number="SR-1001", at=AT)
        await contacts.put(LAST_TOUCH, "acme", touch)
        assert await contacts.get(LAST_TOUCH, "acme") == touch
        assert await until(lambda: contacts.last_touch("acme"), timeout=4.0) == touch
        # START: an opt-out the view still shows is confirmed on the stored record, so it ends at once.
        await contacts.put(OPT_OUT, "+15550100", OptOut(opted_out=False, at=AT))
        assert not await contacts.opted_out("+15550100")
    finally:
        await contacts.close()


async def test_admissions_remember_their_entry_and_are_never_fooled_by_it(bus: Bus) -> None:
    """Two replicas share a counter: each writes at the revision it last wrote, a stale one is refused
    and re-read, and a refusal decided on a remembered value is checked on the stored one."""
    one, two = ContactState(bus), ContactState(bus)
    counter = Family("count", s.KV_WINDOWS, int)

    def three(current: int | None) -> tuple[bool, int]:
        seen = current or 0
        return seen < 3, seen + 1

    answers = [await replica.admit(counter, "y", three) for replica in (one, one, two, one, two, one)]
    assert answers == [True, True, True, False, False, False]
    assert await one.get(counter, "y") == 3
    await two.forget(counter, "y")  # the window expired, say: `one` still remembers it full
    assert await one.admit(counter, "y", three)
    assert await two.admit(counter, "y", three)
    assert await one.get(counter, "y") == 2


async def test_admit_stores_only_what_it_allows(bus: Bus) -> None:
    """Three at most, even when ten ask at once: the count is compare-and-set, never lost or doubled."""
    contacts = ContactState(bus)
    counter = Family("count", s.KV_WINDOWS, int)

    def three(current: int | None) -> tuple[bool, int]:
        seen = current or 0
        return seen < 3, seen + 1

    answers = await asyncio.gather(*(contacts.admit(counter, "x", three) for _ in range(10)))
    assert answers.count(True) == 3
    assert await contacts.get(counter, "x") == 3
    await contacts.forget(counter, "x")
    assert await contacts.get(counter, "x") is None
