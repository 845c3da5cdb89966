"""Mailboxes of an address header as written: brackets win, and a display name never supplies an address."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOMAIN = r"@[\w-]+(?:\.[\w-]+)*"
_ADDR = re.compile(rf"[\w.!#$%&'*+/=?^`{{|}}~-]+{_DOMAIN}")
# A local part with spaces has one valid spelling, quoted (RFC 5322 3.4.1): <power quadrant@x> or "a b"@x.
_SPACED = re.compile(rf"([^\s\"@<>][^\"@<>]*[^\s\"@<>])({_DOMAIN})")
_QUOTED = re.compile(rf'"([^"\\]*)"({_DOMAIN})')


@dataclass(frozen=True)
class Mailbox:
    address: str | None  # lower-case; None when the mailbox names no single usable address
    display: str  # the phrase as written (RFC 2047 words still encoded, quotes kept)


def _address_of(text: str, *, bracketed: bool) -> str | None:
    # A source route ("@relay:user@host") is obsolete syntax: the address is after the last colon.
    candidate = text.strip().rsplit(":", 1)[-1].strip() if bracketed else text.strip()
    if _ADDR.fullmatch(candidate):
        return candidate.lower()
    spelled = _QUOTED.fullmatch(candidate) or (_SPACED.fullmatch(candidate) if bracketed else None)
    if spelled:
        return f'"{" ".join(spelled.group(1).split())}"{spelled.group(2)}'.lower()
    return None


def _finish(phrase: list[str], angles: list[str]) -> Mailbox | None:
    text = "".join(phrase).strip()
    if angles:
        # "jane@acme.example <mallory@evil.example>" is mallory: what looks like an address before the
        # brackets is display text. Two bracketed addresses in one mailbox name nobody for sure.
        address = _address_of(angles[0], bracketed=True) if len(angles) == 1 else None
        return Mailbox(address, text)
    if not text:
        return None
    if ":" in text and text.endswith(";"):
        return None  # an (empty) group: "undisclosed-recipients:;"
    # A stray closing bracket is not part of the address: '"a b"@example.com>'.
    whole = _address_of(text.rstrip(">"), bracketed=False)
    if whole is not None:
        return Mailbox(whole, "")
    words = text.split()
    # "Test test@example.com": a name and an address that lost their brackets; the address is last,
    # and it must be the only word that looks like one.
    with_at = [w for w in words if "@" in w]
    if len(with_at) != 1 or with_at[0] != words[-1]:
        return Mailbox(None, text)
    return Mailbox(_address_of(words[-1], bracketed=False), " ".join(words[:-1]))


def mailboxes(value: str) -> list[Mailbox]:
    """The mailboxes of a raw (undecoded) From/Sender/Reply-To value, in order.

    Read before RFC 2047 decoding, so an encoded word (whose decoded text may hold CRLF, colons or
    anything that looks like an address) can only ever be display text. Quoted strings and comments
    are display text too; commas inside them do not separate mailboxes.
    """
    boxes: list[Mailbox] = []
    phrase: list[str] = []
    angles: list[str] = []
    angle: list[str] | None = None
    quoted = escaped = False
    depth = 0
    for ch in value.replace("\r", " ").replace("\n", " "):
        if escaped:
            escaped = False
            if quoted:
                phrase.append(ch)
        elif quoted:
            escaped = ch == "\\"
            quoted = ch != '"'
            phrase.append(ch)
        elif depth:
            escaped = ch == "\\"
            depth += {"(": 1, ")": -1}.get(ch, 0)
        elif angle is not None:
            if ch == ">":
                angles.append("".join(angle))
                angle = None
            else:
                angle.append(ch)
        elif ch == '"':
            quoted = True
            phrase.append(ch)
        elif ch == "(":
            depth = 1
        elif ch == "<":
            angle = []
        elif ch == ",":
            box = _finish(phrase, angles)
            if box is not None:
                boxes.append(box)
            phrase, angles = [], []
        else:
            phrase.append(ch)
    if angle is not None:
        angles.append("".join(angle))  # an unclosed bracket still encloses the address
    box = _finish(phrase, angles)
    if box is not None:
        boxes.append(box)
    return boxes


def unquoted(display: str) -> str:
    """A display phrase without its quotes and backslash escapes."""
    text = display.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text
