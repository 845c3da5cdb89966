"""After DONE: a short thanks within the reopen window is noted, other words reopen, later ones open anew."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from services.contracts.subjects import kv_key
from services.contracts.tickets import Ticket

Verdict = Literal["noted", "reopen", "new"]

THANKS_MAX = 80  # characters: a longer message says something a tech should read
# Words a closing "thanks, all good" is made of; a message of nothing else is a courtesy.
_COURTESY = frozenset((
    "thanks", "thank", "thx", "ty", "tyvm", "you", "u", "so", "very", "much", "many", "again", "a", "lot",
    "lots", "ok", "okay", "k", "kk", "great", "perfect", "cool", "awesome", "excellent", "brilliant", "nice",
    "good", "all", "fine", "now", "working", "works", "work", "fixed", "resolved", "solved", "done", "sorted",
    "got", "it", "that's", "thats", "is", "was", "it's", "its", "sounds", "yes", "yep", "yeah", "sure",
    "appreciated", "appreciate", "cheers", "guys", "team", "everything", "all's", "alls",
))  # fmt: skip
_WORD = re.compile(r"[a-z']+")


def phone_key(phone: str) -> str:
    """Router KV key holding the number of a phone's latest ticket."""
    return f"phone.{kv_key(phone)}"


def is_courtesy(text: str) -> bool:
    """'Thanks, all good now!' or 'ok 👍': nothing in it but thanks and okay words."""
    cleaned = text.strip().lower().replace("\u2019", "'")
    if not cleaned or len(cleaned) > THANKS_MAX:
        return False
    words = _WORD.findall(cleaned)
    # Emoji and punctuation alone ("👍") are a courtesy too; any other word is content.
    return all(word.strip("'") in _COURTESY for word in words)


def after_resolution(ticket: Ticket, text: str, at: datetime, window: timedelta) -> Verdict:
    """What a client's message about a resolved ticket does."""
    if ticket.resolved_at is None or at - ticket.resolved_at > window:
        return "new"
    return "noted" if is_courtesy(text) else "reopen"
