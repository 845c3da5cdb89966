"""When we must not write: role addresses, automatic mail, and a per-recipient rate window."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from services.contracts.requests import Nature

# Answering these starts mail loops or talks to machines; RFC 3834 says leave them alone.
ROLE_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "no-reply",
        "noreply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "bounce",
        "bounces",
    }
)

RATE_LIMIT = 10
RATE_SPAN = timedelta(minutes=10)


def is_role_address(address: str) -> bool:
    local = address.strip().strip("<>").rsplit("@", 1)[0].lower()
    # "bounces+abc=example.com@list.example" is a VERP bounce address: judge the part before '+'.
    local = local.split("+", 1)[0]
    return local in ROLE_LOCAL_PARTS


def may_auto_answer(
    address: str | None, *, nature: Nature = "request", auto_submitted: str | None = None
) -> bool:
    """Whether an automatic reply to this sender is allowed at all (RFC 3834 plus role addresses)."""
    if nature != "request":
        return False
    if auto_submitted is not None and auto_submitted.strip().lower() not in ("", "no"):
        return False
    return not (address and is_role_address(address))


class RateWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Instants of recent system messages to one recipient (kept in KV_WINDOWS by the app, expiring)."""

    sent: tuple[datetime, ...] = ()


def admit(
    window: RateWindow, now: datetime, *, limit: int = RATE_LIMIT, span: timedelta = RATE_SPAN
) -> tuple[bool, RateWindow]:
    """Sliding window: allow when fewer than `limit` messages went out in the last `span`.

    Returns (allowed, new window). A refused message is not recorded, so a flood does not
    keep the window shut forever.
    """
    recent = tuple(t for t in window.sent if now - t < span)
    if len(recent) >= limit:
        return False, RateWindow(sent=recent)
    return True, RateWindow(sent=(*recent, now))
