"""Charset labels to Python codecs, total byte decoding and RFC 2047 encoded words."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.message import Message

# Labels seen in the wild that Python either lacks or decodes too narrowly.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "us-ascii": "utf-8",  # mislabeled 8-bit text is far more often UTF-8 than anything else
    "ascii": "utf-8",
}

# Raw 8-bit header bytes carry no label. After UTF-8 and the charsets the message's own parts declare,
# these are tried in order and the first strict decode wins: the multi-byte East Asian encodings reject
# most byte strings that are not theirs, while windows-1252 accepts almost anything, so it comes last.
LEGACY_CHARSETS = ("cp932", "euc_jp", "gb18030", "big5", "cp949", "cp1252")
# ...unless nothing in the message hints at East Asian text: then raw bytes are far more likely Latin-1
# or windows-1252 ("Bérénice"), which cp932 would also "decode" strictly, into nonsense.
_WESTERN_FIRST = ("cp1252", *LEGACY_CHARSETS[:-1])
_CJK_CODECS = (
    "cp932",
    "shift_jis",
    "euc_jp",
    "iso2022_jp",
    "gb",
    "big5",
    "cp949",
    "euc_kr",
    "iso2022_kr",
    "hz",
)
# Decoding 8-bit header bytes as UTF-16/32 "succeeds" on any even length and yields nonsense.
_WIDE_CODECS = ("utf_16", "utf_32")


def charset_codec(label: str | None) -> str:
    """A Python codec name for a MIME charset label; unknown labels fall back to UTF-8."""
    name = (label or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL byte in it
        return "utf-8"


# Some codecs (UTF-7, UTF-16 with errors="replace" aside) decode to lone surrogates, which no UTF-8
# encoder accepts: left in, the request could never be published and the mail would get 451 forever.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole(text: str) -> str:
    # isascii() reads a flag CPython keeps on every string: most text needs no search at all.
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def decode_bytes(data: bytes, label: str | None) -> str:
    """Decode without ever raising: declared charset, then UTF-8, then latin-1 (total)."""
    codec = charset_codec(label)
    try:
        return _whole(data.decode(codec))
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _whole(data.decode(codec, errors="replace")) if codec != "utf-8" else data.decode("latin-1")


def decode_strict(data: bytes, codecs_in_order: tuple[str, ...]) -> str:
    """The first codec that decodes every byte; latin-1 (total) when none does, so this never raises."""
    for codec in dict.fromkeys(codecs_in_order):
        try:
            return _whole(data.decode(codec))
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


_ENCODED_WORD = re.compile(r"=\?([^?\s]*?)\?([bBqQ])\?(.*?)\?=")
# RFC 2047 6.2: whitespace between two adjacent encoded words is not part of the text.
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?[^?\s]*?\?[bBqQ]\?.*?\?=)")
_QP_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _word_bytes(match: re.Match[str]) -> bytes | None:
    encoding, payload = match.group(2), match.group(3)
    try:
        if encoding in "bB":
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        return _QP_BYTE.sub(lambda h: bytes([int(h.group(1), 16)]), payload.replace("_", " ").encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None  # not really an encoded word: it stays as written


def decode_words(text: str, fallbacks: tuple[str, ...] = LEGACY_CHARSETS) -> str:
    """RFC 2047 encoded words; a word whose bytes do not fit its label gets UTF-8, then `fallbacks`."""
    text = _BETWEEN_WORDS.sub("", text)
    out: list[str] = []
    pos = 0
    run = bytearray()
    run_label: str | None = None

    def flush() -> None:
        if run_label is not None:
            # Mislabeled words are common (Shift_JIS bytes labeled ISO-2022-JP): the label is a hint.
            out.append(decode_strict(bytes(run), (charset_codec(run_label), "utf-8", *fallbacks)))

    for match in _ENCODED_WORD.finditer(text):
        data = _word_bytes(match)
        if data is None:
            continue
        label = match.group(1).split("*")[0].lower()
        if run_label == label and match.start() == pos:
            # Senders split multi-byte text across adjacent words: decode their bytes together.
            run += data
        else:
            flush()
            out.append(text[pos : match.start()])
            run, run_label = bytearray(data), label
        pos = match.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


def declared_charsets(msg: Message) -> tuple[str, ...]:
    """Codecs for the charsets the message's parts declare, then the legacy guesses in the order they hint.

    The best guess for the message's unlabeled header bytes.
    """
    found: list[str] = []
    try:
        for part in msg.walk():
            label = part.get_content_charset()
            if label:
                codec = charset_codec(label)
                if not codec.startswith(_WIDE_CODECS):
                    found.append(codec)
    except Exception:  # a broken structure only costs us the hint, never the mail
        pass
    east_asian = any(codec.replace("-", "_").startswith(_CJK_CODECS) for codec in found)
    return tuple(dict.fromkeys((*found, *(LEGACY_CHARSETS if east_asian else _WESTERN_FIRST))))
