"""The shared timer loop backs off while rounds fail, up to one ceiling, and starts over after a success."""

from __future__ import annotations

from services.state.timers import MAX_TIMER_BACKOFF, backoff


def test_backoff_doubles_from_the_poll_up_to_the_ceiling() -> None:
    assert backoff(0.5, 0) == 0.5
    assert [backoff(0.5, n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff(0.5, 20) == MAX_TIMER_BACKOFF
    assert backoff(60.0, 3) == 60.0  # a poll longer than the ceiling is never shortened
