"""Header reading: a fast email policy for plain values, raw 8-bit headers, the sender, message ids."""

from __future__ import annotations

import email
import email.policy
import email.utils
import functools
import re
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from services.intake_email.address import mailboxes, unquoted
from services.intake_email.mail.charsets import declared_charsets, decode_strict, decode_words

# email.policy's own unfolding on fetch: CR and LF go, the whitespace after them stays.
_LINE_BREAKS = re.compile(r"\n|\r")
# Printable ASCII (and tabs from unfolding) without encoded words: the values below can be read directly.
_PLAIN_VALUE = re.compile(r"[\t -~]*")
_PLAIN_ADDR = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_MAILBOX = re.compile(rf"(?:([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) )?<({_PLAIN_ADDR})>|({_PLAIN_ADDR})")
_PLAIN_LIST_SEPARATOR = re.compile(r", ?")
_PLAIN_MIME = re.compile(
    r'([A-Za-z0-9.+_-]+(?:/[A-Za-z0-9.+_-]+)?)((?:; *[A-Za-z0-9_-]+=(?:"[^"\\]*"|[A-Za-z0-9.+_-]+))*)'
)
_PLAIN_PARAM = re.compile(r'; *([A-Za-z0-9_-]+)=(?:"([^"\\]*)"|([A-Za-z0-9.+_-]+))')
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_MSG_ID = re.compile(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+>")
_ADDRESS_HEADERS = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-sender",
    ]
)
_DATE_HEADERS = frozenset(("date", "resent-date", "orig-date"))


def _plain_header_text(name: str, value: str) -> str | None:
    """str() of policy.default's header object for an unfolded value, when the value is plain enough.

    None means "not sure": the caller then asks email.headerregistry itself. Each branch renders the
    value exactly as the registry's class would (addresses re-joined with ", ", MIME parameters quoted
    and joined with "; ", dates re-formatted), so the parse reads the same text either way.
    """
    if "=?" in value or not _PLAIN_VALUE.fullmatch(value):
        return None
    key = name.lower()
    if key in _ADDRESS_HEADERS:
        rendered = []
        for item in _PLAIN_LIST_SEPARATOR.split(value):
            box = _PLAIN_MAILBOX.fullmatch(item)
            if not box:
                return None
            rendered.append(f"{box[1]} <{box[2]}>" if box[1] else box[2] or box[3])
        return ", ".join(rendered)
    if key in ("content-type", "content-disposition"):
        mime = _PLAIN_MIME.fullmatch(value)
        if not mime:
            return None
        params: list[str] = []
        seen: set[str] = set()
        for param in _PLAIN_PARAM.finditer(mime[2]):
            if param[1].lower() in seen:
                return None  # the registry keeps the first of a repeated parameter: leave that to it
            seen.add(param[1].lower())
            text = param[2] if param[3] is None else param[3]
            params.append(f'{param[1]}="{text}"' if text else param[1])
        return f"{mime[1]}; {'; '.join(params)}" if params else mime[1]
    if key == "content-transfer-encoding":
        return value if _PLAIN_TOKEN.fullmatch(value) else None
    if key == "message-id":
        return value if _PLAIN_MSG_ID.fullmatch(value) else None
    if key in _DATE_HEADERS:
        # DateHeader.parse: empty stays empty, an unparsable date stays as written, any other error raises.
        if not value:
            return ""
        try:
            return email.utils.format_datetime(parsedate_to_datetime(value))
        except ValueError:
            return value
    if key == "mime-version":
        return None
    return value  # unstructured: the registry's text is the value itself


class _QuickPolicy(email.policy.EmailPolicy):
    """policy.default, minus the cost of building a header object per read for plain header values.

    policy.default parses a header through email.headerregistry on every read (the parser alone reads
    each part's Content-Type several times), which was most of a message's parse time. Plain values
    get the same text without that; anything else still goes through the registry, so the message's
    structure and every header we read come out exactly as policy.default gives them.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        value = "".join(_LINE_BREAKS.split(value))
        # Only short values are cached, so a few huge headers cannot pin megabytes in the cache.
        return (
            _fetched_header(name, value) if len(value) <= 2048 else _fetched_header.__wrapped__(name, value)
        )


_QUICK_POLICY = _QuickPolicy()


@functools.lru_cache(maxsize=512)
def _fetched_header(name: str, value: str) -> Any:
    """The header as policy.default reads it; cached because a part's Content-Type is read many times.

    Header objects are immutable, so sharing one between reads changes nothing. An error is not cached:
    every read raises it again, as policy.default would.
    """
    plain = _plain_header_text(name, value)
    return plain if plain is not None else _QUICK_POLICY.header_factory(name, value)


def parse_message(raw: bytes) -> Message:
    try:
        msg = email.message_from_bytes(raw, policy=_QUICK_POLICY)
        # Touch the headers we read: the header registry raises lazily on some broken ones.
        for name in ("from", "subject", "date", "message-id", "sender", "to"):
            msg.get(name)
        return msg
    except Exception:
        return email.message_from_bytes(raw, policy=email.policy.compat32)


def _raw_header(msg: Message, name: str) -> str | None:
    """The header as it arrived (8-bit bytes kept as surrogate escapes), before any policy decoding."""
    try:
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                return str(value)
    except Exception:
        pass
    return None


def raw_text(msg: Message, name: str) -> str:
    """The header as it arrived, with any undeclared 8-bit bytes decoded (never surrogate escapes)."""
    raw = _raw_header(msg, name) or ""
    if _has_8bit(raw):
        return decode_strict(raw.encode("utf-8", "surrogateescape"), ("utf-8", *declared_charsets(msg)))
    return raw


def _has_8bit(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def header_text(msg: Message, name: str) -> str:
    raw = _raw_header(msg, name)
    try:
        value = msg.get(name)
    except Exception:
        value = raw
    if value is None:
        return ""
    text = str(value)
    if raw is not None and (_has_8bit(raw) or "\ufffd" in text):
        # The policy could not decode it (undeclared 8-bit bytes, an encoded word whose bytes do not fit
        # its label): decode the bytes as they arrived, trying the charsets this message declares first.
        fallbacks = declared_charsets(msg)
        if _has_8bit(raw):
            raw = decode_strict(raw.encode("utf-8", "surrogateescape"), ("utf-8", *fallbacks))
        text = decode_words(raw, fallbacks)
    elif "=?" in text:
        # Encoded words the policy left alone (e.g. one multi-byte character split across two words):
        # decode them from the header as it arrived, which the policy's partial decoding may have lost.
        text = decode_words(raw if raw is not None else text, declared_charsets(msg))
    return " ".join(text.split())


def sender_address(msg: Message) -> tuple[str | None, str | None]:
    """The sender's address and display name, read from the header as written (see address.mailboxes)."""
    for name in ("From", "Sender", "Return-Path"):
        value = raw_text(msg, name)
        for box in mailboxes(value) if value.strip() else ():
            address = box.address
            if address and "=?" in address:
                # An encoded word in the address itself ("=?utf-8?Q?agent?=@example.com"), never one
                # from the display name: decoded, it must still be one address.
                decoded = mailboxes(decode_words(address))
                address = decoded[0].address if len(decoded) == 1 else None
            if address:
                display = decode_words(unquoted(box.display), declared_charsets(msg))
                return address, " ".join(display.split()) or None
    return None, None


_MSGID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value))
