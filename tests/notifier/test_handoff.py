"""Turns per recipient: arrival order at the ordered point, no overtaking, keys independent."""

from __future__ import annotations

import asyncio

from services.notifier.handoff import Turn, Turns


async def waits_for(holder: Turn, turn: Turn) -> None:
    """`turn` waits while `holder` has not passed, and goes (and passes) once it has."""
    waiting = asyncio.create_task(turn.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    holder.passed()
    await asyncio.wait_for(waiting, 1)
    turn.passed()


async def test_turns_pass_in_the_order_they_were_taken_whatever_order_they_arrive_in() -> None:
    turns = Turns()
    passed: list[int] = []

    async def message(i: int, delay: float) -> None:
        turn = turns.take("+1555")
        await asyncio.sleep(delay)  # its own round trips: the later ones finish theirs first
        await turn.wait()
        passed.append(i)
        turn.passed()

    await asyncio.gather(*(message(i, 0.05 - i * 0.01) for i in range(5)))
    assert passed == [0, 1, 2, 3, 4]
    assert len(turns) == 0  # nothing kept once every turn passed


async def test_a_turn_given_up_early_does_not_let_the_next_overtake_a_waiting_one() -> None:
    turns = Turns()
    first, second, third = turns.take("k"), turns.take("k"), turns.take("k")
    second.passed()  # done already (say): it never waits, and passes nothing before `first`
    await waits_for(first, third)
    assert len(turns) == 0


async def test_keys_do_not_wait_for_each_other_and_passing_twice_is_harmless() -> None:
    turns = Turns()
    held = turns.take("a")
    other = turns.take("b")
    await asyncio.wait_for(other.wait(), 1)
    other.passed()
    other.passed()
    after = turns.take("a")
    await waits_for(held, after)
    assert len(turns) == 0


async def test_a_cancelled_waiter_does_not_cancel_the_turn_before_it() -> None:
    turns = Turns()
    first, second, third = turns.take("k"), turns.take("k"), turns.take("k")
    cancelled = asyncio.create_task(second.wait())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    second.passed()  # what the sender's `finally` does
    await waits_for(first, third)  # `first` still holds the key
