"""Attachments as spans of the stored raw original, so their bytes are stored once."""

from __future__ import annotations

import itertools
import re

from services.contracts.requests import decode_transfer

_MESSAGE_PART = re.compile(rb"^content-type:[ \t]*message/", re.IGNORECASE | re.MULTILINE)


def locate(
    raw: bytes, encoded: bytes | None, encoding: str, data: bytes, start: int = 0
) -> tuple[int, int] | None:
    """Where an attachment's encoded body lies in `raw` (offset, length), searched from `start` first.

    Only a span that decodes to exactly the extracted bytes counts: anything else (a body the parser
    repaired) is None, and the caller stores the bytes on their own.
    """
    if encoded is None:
        return None
    at = raw.find(encoded, start)
    if at < 0:
        at = raw.find(encoded)
    if at < 0 or decode_transfer(encoding, encoded) != data:
        return None
    return at, len(encoded)


def message_part_bodies(raw: bytes, boundary: str) -> list[tuple[int, int]]:
    """(start, end) of the body of each message/* part directly inside the multipart with `boundary`.

    The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1), so it is not part of
    the body. A forwarded or bounced message is kept as such a body, byte for byte as it arrived.
    """
    delimiter = re.compile(
        rb"(?:\r?\n|^)--" + re.escape(boundary.encode("ascii", "replace")) + rb"(--)?[ \t]*(?=\r?\n|$)"
    )
    found = list(delimiter.finditer(raw))
    bodies = []
    for this, following in itertools.pairwise(found):
        if this.group(1):
            break  # the close delimiter: what follows is the epilogue
        head = this.end() + (2 if raw.startswith(b"\r\n", this.end()) else 1)
        end = following.start()
        blank = re.compile(rb"\r?\n\r?\n").search(raw, head, end)
        if blank is not None and _MESSAGE_PART.search(raw, head, blank.start()):
            bodies.append((blank.end(), end))
    return bodies
