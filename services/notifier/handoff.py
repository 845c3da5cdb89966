"""Turns per recipient: one recipient's messages overlap their round trips and pass one point in order."""

from __future__ import annotations

import asyncio


class Turns:
    """A queue of turns per key (a recipient), in the order `take` was called.

    A lane per recipient would run one message's every round trip (claim, window, Twilio, settle)
    before the next one starts; with turns, each message does its own round trips alongside its
    neighbours' and waits only at the point that must stay ordered (the request to Twilio).
    """

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}  # the newest turn's "passed" of each key

    def take(self, key: str) -> Turn:
        """The next turn of `key`; take it before the first await so turns follow arrival order."""
        passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        turn = Turn(self, key, self._last.get(key), passed)
        self._last[key] = passed
        return turn

    def __len__(self) -> int:
        """Keys with a turn not yet passed (forgotten once their last turn passes)."""
        return len(self._last)

    def _forget(self, key: str, passed: asyncio.Future[None]) -> None:
        if self._last.get(key) is passed:
            del self._last[key]


class Turn:
    """One message's place in its key's queue."""

    def __init__(
        self, turns: Turns, key: str, before: asyncio.Future[None] | None, passed: asyncio.Future[None]
    ) -> None:
        self._turns, self._key, self._before, self._passed = turns, key, before, passed
        self._released = False

    async def wait(self) -> None:
        """Until every earlier turn of the key has passed."""
        if self._before is not None and not self._before.done():
            # Shielded: a cancelled waiter must not cancel the turn the others wait on.
            await asyncio.shield(self._before)

    def passed(self) -> None:
        """Let the next turn go (idempotent). A turn given up before its predecessors passed (the
        message was done already, say) passes only when they have: nobody overtakes a waiting turn."""
        if self._released:
            return
        self._released = True
        if self._before is None or self._before.done():
            self._finish()
        else:
            self._before.add_done_callback(lambda _: self._finish())

    def _finish(self) -> None:
        if not self._passed.done():
            self._passed.set_result(None)
        self._turns._forget(self._key, self._passed)
