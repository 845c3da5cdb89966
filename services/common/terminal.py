"""Text for an operator's terminal: control characters from mail or SMS must never reach it raw."""

from __future__ import annotations

import re

# C0 controls (escape, bell, carriage return, ...), DEL, C1 controls (CSI 0x9b acts like ESC [ on many
# terminals) and the bidirectional overrides that make text display in a different order than it reads.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every unsafe character shown as a visible escape (\\x1b, \\u202e); nothing else changes."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
