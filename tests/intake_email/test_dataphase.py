"""dataphase.py: DATA read in blocks gives the same message, verdict and rest however the bytes are split."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake_email.dataphase import DataPhase

END = b"\r\n.\r\n"


Read = tuple[str, bytes | None, bytes, int]


def _read(stream: bytes, cuts: list[int], size_limit: int | None = 100, line_limit: int = 20) -> Read | None:
    """Feed `stream` split at `cuts`; (state, content, rest, size) once the end line is in, else None."""
    phase = DataPhase(size_limit, line_limit)
    edges = [0, *sorted(c for c in cuts if 0 < c < len(stream)), len(stream)]
    for start, stop in itertools.pairwise(edges):
        rest = phase.feed(stream[start:stop])
        if rest is not None:
            # What followed the end line in this chunk, and everything sent after it.
            rest += stream[stop:]
            content = phase.content() if phase.state == "nominal" else None
            return phase.state, content, rest, phase.size
    return None


def _state(stream: bytes, size_limit: int | None = 100) -> str:
    read = _read(stream, [], size_limit)
    assert read is not None, "the end line was not found"
    return read[0]


def _lines(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


def test_a_usual_message_is_unstuffed_and_the_next_command_is_left() -> None:
    stream = _lines([b"Subject: x", b"", b"..leading dot", b"..", b"body"]) + b".\r\nQUIT\r\n"
    assert _read(stream, []) == (
        "nominal",
        _lines([b"Subject: x", b"", b".leading dot", b".", b"body"]),
        b"QUIT\r\n",
        len(stream) - len(b".\r\nQUIT\r\n"),
    )


def test_an_empty_message_ends_at_once() -> None:
    assert _read(b".\r\nQUIT\r\n", []) == ("nominal", b"", b"QUIT\r\n", 0)
    assert _read(b".\r\nQUIT\r\n", [1, 2]) == ("nominal", b"", b"QUIT\r\n", 0)


def test_a_dot_inside_a_line_or_a_bare_newline_does_not_end_the_message() -> None:
    # Only CRLF ends a line (RFC 5321 2.3.8); a line starting with a dot loses it, as in aiosmtpd.
    stream = b"a.\r\n\n.\r\nb\r\n.\n\r\n.\r\n"
    assert _read(stream, []) == ("nominal", b"a.\r\n\n.\r\nb\r\n\n\r\n", b"", len(stream) - 3)


def test_line_limit_counts_the_crlf_and_the_text_alone() -> None:
    # 18 characters + CRLF = 20: fits; 19 + CRLF = 21 is too long (aiosmtpd's 1001 with the CRLF).
    assert _state(b"x" * 18 + b"\r\n" + END[2:]) == "nominal"
    assert _state(b"x" * 19 + b"\r\n" + END[2:]) == "too_long"


def test_size_limit_counts_every_line_with_its_crlf() -> None:
    body = b"123456789\r\n" * 9 + b"1234567\r\n"  # 9 x 11 + 9 = 108 bytes
    assert _state(body + END[2:], size_limit=len(body)) == "nominal"
    assert _state(body + END[2:], size_limit=len(body) - 1) == "too_much"
    assert _state(body + END[2:], size_limit=None) == "nominal"
    assert _state(body + END[2:], size_limit=0) == "nominal"  # 0 is no limit, as in aiosmtpd


def test_the_first_broken_limit_in_line_order_decides() -> None:
    # The overlong line comes before the size runs out: too long, and the other way round.
    assert _state(b"x" * 30 + b"\r\n" + b"y" * 15 + b"\r\n" * 10 + END[2:], size_limit=30) == "too_long"
    assert _state(b"y\r\n" * 20 + b"x" * 30 + b"\r\n" + END[2:], size_limit=30) == "too_much"
    # A line whose text alone is over the limit is too long before its bytes count towards the size.
    assert _state(b"x" * 25 + b"\r\n" + END[2:], size_limit=10) == "too_long"
    # A line over the limit only with its CRLF: its bytes count first.
    assert _state(b"x" * 19 + b"\r\n" + END[2:], size_limit=10) == "too_much"


def test_a_refused_message_keeps_nothing_while_the_client_goes_on() -> None:
    phase = DataPhase(1000, 1001)
    for _ in range(200):
        assert phase.feed(b"x" * 999 + b"\r\n") is None
    assert phase.state == "too_much" and phase._lines == [] and len(phase._tail) <= 4
    endless = DataPhase(None, 1001)
    for _ in range(200):
        assert endless.feed(b"z" * 10_000) is None  # one line with no end
    assert endless.state == "too_long" and len(endless._tail) <= 4
    assert endless.feed(b"\r\n.\r\nQUIT\r\n") == b"QUIT\r\n"


PIECES = st.sampled_from([b"a", b"b", b".", b"\r", b"\n", b"\r\n", b"..", b"\r\n.", b"xxxxxxxxxx"])


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(PIECES, max_size=60),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.sampled_from([None, 0, 15, 60]),
)
def test_any_split_of_the_same_bytes_reads_the_same(
    pieces: list[bytes], cuts: list[int], size_limit: int | None
) -> None:
    stream = b"".join(pieces) + END + b"QUIT\r\n"
    whole = _read(stream, [], size_limit)
    assert whole is not None
    assert _read(stream, cuts, size_limit) == whole
    assert _read(stream, list(range(len(stream))), size_limit) == whole  # a byte at a time
