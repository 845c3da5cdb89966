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


class SessionSlots:
    """Open SMTP sessions, in total and per client IP, so one address cannot take every slot."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self.count = 0
        self._by_ip: dict[str, int] = {}

    def take(self, client: str) -> str | None:
        """None when the session may start, else the refusal to send before the greeting."""
        if self.count >= self.total:
            return "421 4.7.0 Too many connections, try again later"
        if self._by_ip.get(client, 0) >= self.per_ip:
            return "421 4.7.0 Too many connections from your address, try again later"
        self.count += 1
        self._by_ip[client] = self._by_ip.get(client, 0) + 1
        return None

    def give_back(self, client: str) -> None:
        self.count -= 1
        left = self._by_ip.get(client, 1) - 1
        if left:
            self._by_ip[client] = left
        else:
            self._by_ip.pop(client, None)  # the table holds only addresses with open sessions


def is_postmaster(address: str, addresses: tuple[str, ...], domains: tuple[str, ...]) -> bool:
    """RFC 5321 4.5.1: <postmaster> (no domain) and postmaster at any domain we receive for."""
    addr = address.strip().strip("<>").lower()
    if addr == "postmaster":
        return True
    local, at, domain = addr.partition("@")
    ours = {a.lower().rsplit("@", 1)[-1] for a in addresses} | {d.lower().lstrip("@") for d in domains}
    return bool(at) and local == "postmaster" and domain in ours


def share(limit: int, workers: int) -> int:
    """One worker process's part of a limit meant for the whole intake (at least 1).

    The kernel spreads connections over the workers (SO_REUSEPORT hashes each connection on its
    addresses and ports), so a client's sessions and messages land on all of them. Each worker holding
    its equal part keeps the sum within the configured limit; the price is that a client whose
    connections happen to crowd onto one worker is refused a little before it reaches the whole limit.
    """
    return max(1, limit // workers)
