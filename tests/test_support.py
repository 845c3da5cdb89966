"""tests.support: `until` answers what the check found, waits for it, and names what never came."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus import Bus
from services.contracts import subjects as s
from tests.support import email_request, settled, until


async def test_until_returns_the_first_truthy_answer_of_a_plain_or_async_check() -> None:
    seen: list[int] = []

    def plain() -> list[int]:
        seen.append(len(seen))
        return seen if len(seen) >= 3 else []

    assert await until(plain, 5) == [0, 1, 2]

    async def later() -> str:
        await asyncio.sleep(0)
        return "found"

    assert await until(later, 5) == "found"


async def test_until_names_what_never_came() -> None:
    with pytest.raises(AssertionError, match=r"the reply not met within 0.2 s"):
        await until(lambda: False, 0.2, "the reply")


async def test_settled_says_whether_the_durable_drained(bus: Bus) -> None:
    durable = ((s.STREAM_REQUESTS, "support-test"),)
    await bus.js.add_consumer(s.STREAM_REQUESTS, durable_name="support-test")
    assert await settled(bus, durable, rounds=1, pause=0)
    await bus.publish(s.request_subject("email"), email_request(1), msg_id="req-1")
    assert not await settled(bus, durable, rounds=1, pause=0, patience=0.2)
