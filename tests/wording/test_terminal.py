"""sanitize.printable / json_printable: what reaches an operator's terminal cannot drive it."""

from __future__ import annotations

import json
import unicodedata

from services.wording import sanitize

# ESC sequences (clear screen, set title), BEL, NUL, DEL, C1 CSI and NEL, bidi override, zero-width
# joiner, a line separator, CR and LF: every C0 and C1 control a mail body can carry, and then some.
C0 = "".join(chr(c) for c in range(0x20))
C1 = "".join(chr(c) for c in range(0x80, 0xA0))
HOSTILE = "a\x1b[2J\x1b]0;t\x07\x00\x7f\x9b1m\x85\u202e\u200d\u2028\r\n" + C0 + C1 + "z"


def controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def test_printable_escapes_every_control_visibly() -> None:
    shown = sanitize.printable(HOSTILE)
    assert controls(shown) == []
    assert shown.startswith(
        "a\\x1b[2J\\x1b]0;t\\x07\\x00\\x7f\\x9b1m\\x85\\u202e\\u200d\\u2028\\x0d\\x0a\\x00\\x01"
    )
    assert shown.endswith("\\x9fz")
    assert sanitize.printable("Zoë naïve – ok") == "Zoë naïve – ok"  # ordinary text is untouched


def test_json_printable_keeps_the_data_and_escapes_the_rest() -> None:
    encoded = sanitize.json_printable(json.dumps({"text": HOSTILE}, ensure_ascii=False))
    assert controls(encoded) == []
    assert json.loads(encoded) == {"text": HOSTILE}
    astral = sanitize.json_printable(json.dumps("\U000e0001tag", ensure_ascii=False))  # a Cf above the BMP
    assert astral == '"\\udb40\\udc01tag"' and json.loads(astral) == "\U000e0001tag"
