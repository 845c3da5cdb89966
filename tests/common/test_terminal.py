"""Operator output: control characters are shown as escapes, ordinary text is untouched."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.terminal import printable


def test_escapes_terminal_controls_and_bidi_overrides() -> None:
    assert printable("ok\x1b[2J\x07\r\n\x9b\u202eend") == "ok\\x1b[2J\\x07\\x0d\\x0a\\x9b\\u202eend"
    assert printable("Café — 10:00 ✓") == "Café — 10:00 ✓"


@given(st.text())
def test_output_never_holds_a_control_character(text: str) -> None:
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
