"""Pure bounds on what a ServiceRequest carries, so any mail under the advertised SIZE fits one message."""

from __future__ import annotations

MAX_SUBJECT = 998  # RFC 5322's line limit: a longer subject is folded junk, not information
MAX_THREAD_IDS = 50  # the newest References are the ones that can match a ticket
MAX_ATTACHMENTS = 200  # each listed attachment costs about 200 bytes of the request


def excerpt(text: str, limit: int) -> str:
    """The first `limit` characters, with a note saying how much more the stored text holds."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters in the stored text]"


def newest(ids: tuple[str, ...], limit: int = MAX_THREAD_IDS) -> tuple[str, ...]:
    return ids[-limit:]
