"""Small mails for the parser's tests: headers and a body as raw bytes, and the thread secret they use."""

from __future__ import annotations

SECRET = b"unit-secret"


def mail(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip() + "\n\n" + body).encode("utf-8")
