"""JetStream refusing writes for lack of space: recognising it, and the state /readyz and /metrics show."""

from __future__ import annotations

import time
from collections.abc import Callable

# JetStream error codes meaning "no room to store this", not "this message is wrong":
# 10023 insufficient resources, 10028 memory resources exceeded, 10047 storage resources exceeded,
# 10077 stream store failed (e.g. "maximum bytes exceeded" on a DiscardNew stream).
STORAGE_CODES = frozenset({10023, 10028, 10047, 10077})
STORAGE_WORDS = ("insufficient", "resources exceeded", "maximum bytes", "no space left", "store failed")


def is_storage_error(exc: BaseException | None) -> bool:
    """True when `exc`, or anything it was raised from, is JetStream refusing a write for lack of space."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "err_code", None) in STORAGE_CODES:
            return True
        text = f"{getattr(exc, 'description', '') or ''} {exc}".lower()
        if any(word in text for word in STORAGE_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class StorageHealth:
    """Whether JetStream refused one of our writes for space lately, and how many it refused.

    A refused write keeps its message (nak, spool, 451); the service reports not ready until a later
    write is stored, so ops and load balancers see the store is full instead of silent retries. A
    service that only writes when traffic comes (an intake a balancer stopped sending to) would never
    prove the store has room again, so readiness also returns once `hold` seconds pass without a refusal.
    """

    def __init__(self, *, hold: float = 30.0, now: Callable[[], float] = time.monotonic) -> None:
        self.refusals = 0
        self.hold = hold
        self._now = now
        self._last_refused: float | None = None

    @property
    def ok(self) -> bool:
        return self._last_refused is None or self._now() - self._last_refused > self.hold

    def refused(self) -> None:
        self.refusals += 1
        self._last_refused = self._now()

    def stored(self) -> None:
        self._last_refused = None

    def observe(self, exc: BaseException) -> bool:
        """Note `exc` if it is a storage refusal; returns whether it was."""
        if is_storage_error(exc):
            self.refused()
            return True
        return False
