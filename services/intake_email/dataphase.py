"""One message's DATA read in blocks: the same lines, limits and verdicts as aiosmtpd's line by line."""

from __future__ import annotations

from typing import Literal

State = Literal["nominal", "too_long", "too_much"]
_END = b"\r\n.\r\n"


class DataPhase:
    """One message's DATA as its bytes arrive, until the line holding only a dot (RFC 5321 4.1.1.4).

    aiosmtpd reads DATA with one `readuntil` per line, which is most of its DATA cost for a usual mail.
    Here the bytes are searched for the end in blocks and every line is still held to the same rules,
    in the same order: a line whose text (without CRLF) is longer than `line_limit` makes the message
    too long at once; otherwise its bytes count towards `size_limit` (too much), and a line longer than
    `line_limit` with its CRLF is too long. After the first verdict the rest is only read, never kept,
    so memory stays bounded by the size limit however much a client sends.
    """

    def __init__(self, size_limit: int | None, line_limit: int) -> None:
        self.size_limit = size_limit or 0  # 0 or None: no limit, as in aiosmtpd
        self.line_limit = line_limit
        self.state: State = "nominal"
        self.size = 0  # bytes of the complete lines kept so far, CRLFs included (aiosmtpd's num_bytes)
        self._lines: list[bytes] = []  # complete lines as received, still dot-stuffed
        self._tail = b""  # the line being received (no CRLF yet); it starts at a line start when kept
        self._at_line_start = True

    def feed(self, chunk: bytes) -> bytes | None:
        """Take the next bytes; once the dot line is in, returns what followed it (the next commands)."""
        data = self._tail + chunk
        if self._at_line_start and data.startswith(b".\r\n"):
            self._tail = b""
            return data[3:]
        end = data.find(_END)
        if end >= 0:
            self._take(data[: end + 2])
            self._tail = b""
            return data[end + len(_END) :]
        cut = data.rfind(b"\r\n") + 2  # 1 when there is no CRLF: nothing complete yet
        if cut > 1:
            self._take(data[:cut])
            data = data[cut:]
            self._at_line_start = True
        if self.state == "nominal" and len(data) > self.line_limit + 1:
            # The line is already longer than any allowed one, whatever comes next (aiosmtpd's reader
            # gives up at the same point): too long, and none of it needs to be kept.
            self._refuse("too_long")
        if self.state != "nominal" and len(data) > 4:
            # Only the last bytes can still be the start of the end line's CRLF.
            data = data[-4:]
            self._at_line_start = False
        self._tail = data
        return None

    def content(self) -> bytes:
        """The message with its dot-stuffing removed (RFC 5321 4.5.2); only meaningful when nominal."""
        joined = b"".join(self._lines)
        if joined.startswith(b"."):
            joined = joined[1:]
        return joined.replace(b"\r\n.", b"\r\n")

    def _take(self, block: bytes) -> None:
        """Complete lines (`block` ends with CRLF), in order."""
        if self.state != "nominal":
            return
        longest = max(map(len, block.split(b"\r\n")))
        grown = self.size + len(block)
        if longest + 2 <= self.line_limit and (not self.size_limit or grown <= self.size_limit):
            self.size = grown
            self._lines.append(block)
            return
        # Some line breaks a limit: which verdict comes first is decided line by line, as aiosmtpd does.
        for line in block.split(b"\r\n")[:-1]:
            if len(line) > self.line_limit:
                self._refuse("too_long")
                return
            self.size += len(line) + 2
            if self.size_limit and self.size > self.size_limit:
                self._refuse("too_much")
                return
            if len(line) + 2 > self.line_limit:
                self._refuse("too_long")
                return
            self._lines.append(line + b"\r\n")

    def _refuse(self, state: State) -> None:
        self.state = state
        self._lines = []  # discarded at once, so a refused message holds no memory
