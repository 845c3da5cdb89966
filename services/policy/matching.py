"""The one emergency-keyword matcher and the one contact matcher, shared by intake, router and notifier."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from services.policy.model import Contact


@lru_cache(maxsize=512)
def _whole_word(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(keyword.lower())}\b")


def emergency_hits(text: str, keywords: Iterable[str]) -> tuple[str, ...]:
    """The emergency keywords present in `text` as whole words (case-insensitive), in keyword order."""
    lowered = text.lower()
    return tuple(keyword for keyword in keywords if _whole_word(keyword).search(lowered))


def first_emergency(text: str, keywords: Iterable[str]) -> str | None:
    """The first emergency keyword present as a whole word, or None."""
    lowered = text.lower()
    return next((keyword for keyword in keywords if _whole_word(keyword).search(lowered)), None)


def matching_contact(contacts: Iterable[Contact], *, email: str | None, phone: str | None) -> Contact | None:
    """The first contact with this exact email address (case-insensitive) or this exact phone number."""
    address = (email or "").strip().lower()
    for contact in contacts:
        if address and contact.email and contact.email.lower() == address:
            return contact
        if phone and contact.phone and contact.phone == phone:
            return contact
    return None
