"""Attachments as spans of the raw original: every span found decodes to exactly the extracted bytes."""

from __future__ import annotations

import os
from email.message import EmailMessage

import pytest

from services.contracts.requests import Attachment, attachment_bytes, decode_transfer
from services.intake_email.attachments import locate
from services.intake_email.mail import parse
from tests.conftest import corpus

SECRET = b"s"


def _spans_decode_exactly(raw: bytes) -> tuple[int, int]:
    """(located, total) over the message's attachments; a located span must decode to the parse's bytes."""
    parsed = parse(raw, secret=SECRET)
    located = 0
    for item in parsed.attachments:
        span = locate(raw, item.encoded, item.transfer_encoding, item.data)
        if span is None:
            continue
        located += 1
        reference = Attachment(
            filename=item.filename,
            content_type=item.content_type,
            size=len(item.data),
            object_name="raw",
            offset=span[0],
            length=span[1],
            transfer_encoding=item.transfer_encoding,
        )
        assert attachment_bytes(reference, raw) == item.data, item.filename
    return located, len(parsed.attachments)


def test_every_common_encoding_is_found_in_the_raw_original() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Subject"] = "files"
    msg.set_content("See attached.")
    msg.add_attachment(os.urandom(5000), maintype="application", subtype="octet-stream", filename="a.bin")
    msg.add_attachment(
        "Zeile mit Umlauten: äöü\n" * 20, subtype="csv", filename="b.csv", cte="quoted-printable"
    )
    msg.add_attachment("plain log line\n" * 20, subtype="plain", filename="c.log", cte="7bit")
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("the original")
    msg.add_attachment(inner, filename="fwd.eml")
    raw = msg.as_bytes().replace(b"\n", b"\r\n")
    assert _spans_decode_exactly(raw) == (4, 4)


def test_a_body_the_parser_repaired_is_not_referenced() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n"
        b'Content-Disposition: attachment; filename="u.bin"\r\n\r\n'
        b"begin 644 u.bin\r\n#86)C\r\n`\r\nend\r\n--b--\r\n"
    )
    (item,) = parse(raw, secret=SECRET).attachments
    assert item.data == b"abc"
    assert (
        locate(raw, item.encoded, item.transfer_encoding, item.data) is None
    )  # stored on its own instead, so nothing is lost


@pytest.mark.parametrize(
    ("encoding", "data", "decoded"),
    [
        ("base64", b"aGVs\r\nbG8=", b"hello"),
        ("base64", b"aGVsbG8", b"hello"),  # missing padding, as some senders write it
        ("Quoted-Printable", b"caf=C3=A9=\r\n!", "café!".encode()),
        ("7bit", b"as is", b"as is"),
        ("", b"as is", b"as is"),
    ],
)
def test_decode_transfer(encoding: str, data: bytes, decoded: bytes) -> None:
    assert decode_transfer(encoding, data) == decoded


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["zammad", "sisimai"])
def test_corpus_attachments_are_spans_or_stored_apart(name: str) -> None:
    located = total = 0
    for path in sorted(corpus(name).rglob("*")):
        if path.suffix in (".box", ".eml") and path.is_file():
            found, count = _spans_decode_exactly(path.read_bytes())
            located, total = located + found, total + count
    print(f"{name}: {located} of {total} attachments are spans of the raw original")
    # The rest (CR-only line endings, uuencode, repaired bodies) are stored apart: never lost.
    assert total and located >= total * 0.85
