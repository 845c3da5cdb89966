"""reopen: thanks within the window is noted, anything else reopens, after the window a new ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from services.router.reopen import after_resolution, is_courtesy
from tests.notifier.ticketing import ticket

DONE = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)


@pytest.mark.parametrize(
    "text",
    ["Thanks, all good now", "thank you!", "ok", "OK 👍", "👍", "Great, it works now. Cheers!",
     "resolved, thx", "Thanks so much", "Perfect \u2014 that's fixed"],
)  # fmt: skip
def test_courtesies(text: str) -> None:
    assert is_courtesy(text)


@pytest.mark.parametrize(
    "text",
    ["Thanks, but the printer jams again", "still not working", "ok but what about the scanner?",
     "", "thanks " * 20],
)  # fmt: skip
def test_content(text: str) -> None:
    assert not is_courtesy(text)


def test_window() -> None:
    resolved = msgspec.structs.replace(ticket(), status="resolved", resolved_at=DONE)
    assert after_resolution(resolved, "Thanks!", DONE + timedelta(hours=1), WINDOW) == "noted"
    assert after_resolution(resolved, "It broke again", DONE + timedelta(days=2), WINDOW) == "reopen"
    assert after_resolution(resolved, "It broke again", DONE + WINDOW + timedelta(seconds=1), WINDOW) == "new"
    assert after_resolution(resolved, "Thanks!", DONE + timedelta(days=4), WINDOW) == "new"
