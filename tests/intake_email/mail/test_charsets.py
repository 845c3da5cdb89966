"""charsets.py: charset labels, total decoding, 8-bit header bytes, encoded words."""

from __future__ import annotations

import base64

from services.intake_email.mail import parse
from services.intake_email.mail.charsets import charset_codec, decode_bytes
from tests.intake_email.mail.samples import SECRET


def test_charset_aliases_and_mislabeled_bytes_never_crash() -> None:
    assert charset_codec("ks_c_5601-1987") == "cp949"
    assert charset_codec("gb2312") == "gb18030"
    assert charset_codec("x-no-such-charset") == "utf-8"
    assert decode_bytes("안녕".encode("cp949"), "ks_c_5601-1987") == "안녕"
    assert decode_bytes("こんにちは".encode("iso-2022-jp"), "iso-2022-jp") == "こんにちは"
    assert decode_bytes("Grüße".encode(), "us-ascii") == "Grüße"
    assert decode_bytes(b"caf\xe9", "us-ascii") == "café"
    raw = b"From: a@b.c\nSubject: x\nContent-Type: text/plain; charset=windows-1252\n\nPrice \x80 5\n"
    assert parse(raw, secret=SECRET).full_text == "Price € 5"


def test_undeclared_8bit_header_bytes_try_utf8_then_the_message_charsets_then_legacy_ones() -> None:
    def subject(raw_subject: bytes, body_charset: str) -> str:
        raw = (
            b"From: a@b.c\r\nSubject: " + raw_subject + b"\r\n"
            b"Content-Type: text/plain; charset=" + body_charset.encode() + b"\r\n\r\nhi\r\n"
        )
        return parse(raw, secret=SECRET).subject

    assert subject("Grüße".encode(), "iso-8859-1") == "Grüße"  # valid UTF-8 wins over any label
    # Shift_JIS in a mail whose parts say ISO-2022-JP (which rejects 8-bit): the legacy list finds it.
    assert subject("ツール".encode("shift_jis"), "iso-2022-jp") == "ツール"
    # Latin-1 would also "decode" as Shift_JIS nonsense; the part's declared charset is tried first.
    assert subject("Bérénice".encode("latin-1"), "iso-8859-1") == "Bérénice"
    # ...and with no hint at all (a UTF-8 body), Western bytes are the likelier reading.
    assert subject("Bérénice".encode("latin-1"), "utf-8") == "Bérénice"
    assert subject("Réunion à 9h".encode("cp1252"), "us-ascii") == "Réunion à 9h"
    # A Japanese hint anywhere in the message puts the East Asian codecs first again.
    assert subject("ツール".encode("shift_jis"), "shift_jis") == "ツール"


def test_mislabeled_and_split_encoded_words() -> None:
    sjis = base64.b64encode("ツール EXAMPLE".encode("shift_jis")).decode()
    raw = f"From: =?ISO-2022-JP?B?{sjis}?= <bar@example.org>\nSubject: x\n\nhi\n".encode()
    parsed = parse(raw, secret=SECRET)
    assert (parsed.sender_name, parsed.sender_email) == ("ツール EXAMPLE", "bar@example.org")
    # One ISO-2022-JP character cut in half by the sender's encoder: the two words decode together.
    data = "Undeliverable: ニャーン".encode("iso-2022-jp")
    cut = data.index(b"%c") + 1  # between the two bytes of ャ
    first, second = (base64.b64encode(chunk).decode() for chunk in (data[:cut], data[cut:]))
    raw = f"From: a@b.c\nSubject: =?iso-2022-jp?B?{first}?=\n =?iso-2022-jp?B?{second}?=\n\nhi\n".encode()
    assert parse(raw, secret=SECRET).subject == "Undeliverable: ニャーン"
