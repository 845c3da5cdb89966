"""Pure parsing of what callers and techs send: tech SMS verbs, opt-out keywords, IVR choices, phones."""

from __future__ import annotations

import functools
import re
from typing import Literal

import msgspec
import phonenumbers

from services.contracts.events import ReplyVerb

Choice = Literal["emergency", "new", "existing", "billable"]

# Carrier-standard keywords (Twilio handles these itself too; we record the consent change).
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})

_TICKET = re.compile(r"^(?:SR-?)?(\d{1,9})$", re.IGNORECASE)
_DIGITS: dict[str, Choice] = {"1": "emergency", "2": "new", "3": "existing", "9": "billable"}
_SPEECH: tuple[tuple[re.Pattern[str], Choice], ...] = (
    (re.compile(r"\bexisting\b|\bticket\b"), "existing"),
    (re.compile(r"\bemergenc"), "emergency"),
    (re.compile(r"\bnew\b"), "new"),
)


class TechReply(msgspec.Struct, frozen=True, kw_only=True):
    verb: ReplyVerb
    ticket_number: str | None = None
    minutes: int | None = None
    reason: str = ""


def tech_reply(text: str) -> TechReply:
    """`[SR-1042|1042] A|ACK|ETA <min>|DELAY <min> <reason>|DONE`; anything else is `unknown`."""
    words = text.strip().split()
    ticket: str | None = None
    if words and (match := _TICKET.match(words[0])) and len(words) > 1:
        ticket = f"SR-{match.group(1)}"
        words = words[1:]
    if not words:
        return TechReply(verb="unknown", ticket_number=ticket)
    head = words[0].upper().rstrip(".!,")
    rest = words[1:]
    if head in ("A", "ACK") and not rest:
        return TechReply(verb="accept", ticket_number=ticket)
    if head == "DONE" and not rest:
        return TechReply(verb="done", ticket_number=ticket)
    if head in ("ETA", "DELAY") and rest:
        minutes = _minutes(rest[0])
        if minutes is not None:
            if head == "ETA" and len(rest) == 1:
                return TechReply(verb="eta", ticket_number=ticket, minutes=minutes)
            if head == "DELAY":
                reason = " ".join(rest[1:])
                return TechReply(verb="delay", ticket_number=ticket, minutes=minutes, reason=reason)
    return TechReply(verb="unknown", ticket_number=ticket)


def _minutes(word: str) -> int | None:
    match = re.fullmatch(r"(\d{1,4})(?:m|min|mins|minutes)?", word, re.IGNORECASE)
    return int(match.group(1)) if match else None


def opt_keyword(text: str) -> bool | None:
    """True = opted out, False = opted back in, None = not a consent keyword."""
    word = text.strip().upper().rstrip(".!")
    if word in OPT_OUT:
        return True
    if word in OPT_IN:
        return False
    return None


def ivr_choice(digits: str, speech: str) -> Choice | None:
    """Map a keypress or spoken words to a menu choice; the keypress wins when both are present."""
    if digits:
        return _DIGITS.get(digits.strip()[:1])
    said = speech.lower()
    for pattern, choice in _SPEECH:
        if pattern.search(said):
            return choice
    return None


def ticket_number(digits: str, speech: str) -> str | None:
    """A ticket number keyed in or spoken ("one zero four two" is transcribed as digits by Twilio)."""
    raw = re.sub(r"\D", "", digits or speech)
    return f"SR-{raw}" if 1 <= len(raw) <= 9 else None


@functools.lru_cache(maxsize=4096)
def e164(raw: str, region: str = "US") -> str | None:
    """Normalize a caller id to E.164; None for anonymous/unparseable ids.

    Memoized (bounded): phonenumbers' parse is a large share of a webhook's CPU, and each SMS asks
    for its sender twice while repeat callers and the policy's own numbers recur.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
