"""Small mails for the parser's tests: headers and a body as raw bytes, and the thread secret they use."""

from __future__ import annotations

SECRET = b"unit-secret"
# Encoded words in the headers (RFC 2047) and an RFC 2231 attachment name: Jürgen, Störung, Rechnung März.pdf.
ENCODED = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\nSubject: =?iso-8859-1?q?St=F6rung?=\n"
    b"Message-ID: <a@b>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
    b"--XX\nContent-Type: text/plain; charset=utf-8\n\nHallo\n"
    b"--XX\nContent-Type: application/pdf\n"
    b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\n"
    b"Content-Transfer-Encoding: base64\n\nJVBERg==\n--XX--\n"
)


def mail(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip() + "\n\n" + body).encode("utf-8")
