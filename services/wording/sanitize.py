"""Outbound text hygiene: no control characters, bounded length, and GSM-7 only so an SMS stays cheap."""

from __future__ import annotations

import unicodedata

# GSM 03.38 basic set (one septet each) and the extension table (two septets each: ESC + char).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€")

# Characters phones and mail clients love that have a sensible GSM-7 spelling.
_REPLACEMENTS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2032": "'",
    "\u2033": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\t": " ",
    "\u2022": "*",
    "\u00b7": "*",
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2122": "TM",
    "\u00a9": "(c)",
    "\u00ae": "(R)",
    "`": "'",
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u00b4": "'",
}

SMS_MAX = 459  # three concatenated GSM-7 segments: enough for a dispatch, bounded cost
TECH_SMS_MAX = 612  # four segments: a dispatch with a voicemail transcript and its recording link
SEGMENT = 160  # GSM-7 septets in a single SMS
SEGMENT_PART = 153  # per part of a concatenated SMS (the rest is the concatenation header)


def _plain(char: str) -> str:
    """A GSM-7 spelling of one character: itself, a known substitute, its base letter, or '?'."""
    if char in GSM_BASIC or char in GSM_EXTENSION:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    category = unicodedata.category(char)
    if category in ("Zs", "Zl", "Zp"):
        return " "
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and all(c in GSM_BASIC or c in GSM_EXTENSION for c in base):
        return base
    if category.startswith("So") or category.startswith("Sk") or category == "Cs":
        return ""  # emoji and symbols carry no meaning a tech needs
    return "?"


def strip_controls(text: str, *, keep_newlines: bool = True) -> str:
    """Drop control and format characters (bidi overrides, zero-width, NUL); CRLF becomes LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for char in text:
        if char == "\n":
            out.append("\n" if keep_newlines else " ")
        elif char == "\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Co", "Cn"):
            continue
        else:
            out.append(char)
    return "".join(out)


def one_line(text: str, limit: int) -> str:
    """Collapse whitespace to one line and bound it, marking a cut with '...'."""
    collapsed = " ".join(strip_controls(text, keep_newlines=False).split())
    return truncate(collapsed, limit)


def truncate(text: str, limit: int) -> str:
    if limit < 4:
        raise ValueError("limit must leave room for the ellipsis")
    if len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


def to_gsm(text: str) -> str:
    """Rewrite text into the GSM-7 alphabet (so one SMS segment is 160, not 70, characters)."""
    return "".join(_plain(c) for c in strip_controls(text))


def septets(text: str) -> int:
    """Length in GSM-7 septets (extension characters count twice)."""
    return sum(2 if c in GSM_EXTENSION else 1 for c in text)


def segments(text: str) -> int:
    """How many SMS segments a GSM-7 body (as `sms` returns it) is billed as."""
    used = septets(text)
    return 1 if used <= SEGMENT else -(-used // SEGMENT_PART)


def sms(text: str, limit: int = SMS_MAX) -> str:
    """The body we actually send: GSM-7, no control characters, at most `limit` septets."""
    lines = [" ".join(line.split()) for line in to_gsm(text).split("\n")]
    cleaned = "\n".join(line for line in lines if line)
    if septets(cleaned) <= limit:
        return cleaned
    out: list[str] = []
    used = 0
    for char in cleaned:
        cost = 2 if char in GSM_EXTENSION else 1
        if used + cost > limit - 3:
            break
        out.append(char)
        used += cost
    return "".join(out).rstrip() + "..."


_UNPRINTABLE = frozenset({"Cc", "Cf", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """Text safe to print on an operator's terminal: every control or format character (C0 such as
    ESC, DEL, C1 such as CSI U+009B, bidi overrides, zero-width) is shown as an escape like \\x1b or
    \\u202e instead of acting on the terminal. Newlines and tabs are escaped too: one entry, one line."""
    out = []
    for char in text:
        if unicodedata.category(char) in _UNPRINTABLE:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def json_printable(encoded: str) -> str:
    """Encoded JSON with every control and format character escaped as \\uXXXX: JSON itself leaves
    DEL, C1 (CSI U+009B) and bidi overrides raw, and `cat` or `jq` would hand them to the terminal."""
    out: list[str] = []
    for char in encoded:
        # A raw newline or tab in encoded JSON is layout (inside strings the encoder escaped it).
        if char not in "\n\r\t" and unicodedata.category(char) in _UNPRINTABLE:
            units = char.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2))
        else:
            out.append(char)
    return "".join(out)


def header(text: str, limit: int = 200) -> str:
    """A value safe for an email header: one line (no CR/LF injection), bounded."""
    return one_line(text, limit)
