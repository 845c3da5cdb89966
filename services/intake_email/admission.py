"""Pure admission rules of the SMTP intake: which recipients we accept and per-client rate windows."""

from __future__ import annotations

from collections import deque


def is_support_recipient(address: str, addresses: tuple[str, ...], domains: tuple[str, ...]) -> bool:
    """Only our own support mailboxes: anything else would make us an open relay."""
    addr = address.strip().strip("<>").lower()
    if "@" not in addr:
        return False
    if addr in {a.lower() for a in addresses}:
        return True
    domain = addr.rsplit("@", 1)[1]
    return domain in {d.lower().lstrip("@") for d in domains}


class RateWindow:
    """A sliding one-minute window of accepted messages per client IP (times in seconds)."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float) -> bool:
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        # Forget idle clients so the table cannot grow without bound.
        if len(self._seen) > 10_000:
            for key in [k for k, v in self._seen.items() if not v]:
                del self._seen[key]
        return True
