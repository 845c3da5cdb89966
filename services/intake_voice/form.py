"""Twilio webhook forms checked field by field: body size, SIDs, bounded numbers, URLs and caller ids."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.intake_voice import parse

# Twilio's largest form is an inbound SMS: Body at most 1600 characters (about 10 KiB once
# percent-encoded as UTF-8) plus at most 10 media URLs and their types. 64 KiB leaves headroom for
# fields Twilio adds later and still bounds what one request can make us hold in memory.
MAX_BODY_BYTES = 64 * 1024
MAX_MEDIA = 10  # Twilio attaches at most 10 media to one message
MAX_URL = 2048
MAX_LABEL = 32  # an unparseable caller id ("anonymous", "restricted") shown as is in a subject

# Twilio SIDs are two capital letters and 32 hex digits; we accept any short alphanumeric tail so
# that test and sandbox ids still pass, but never an empty id (it becomes the Nats-Msg-Id) or one
# with characters that could break a header line.
_SID = re.compile(r"[A-Z]{2}[0-9A-Za-z]{1,62}")
_INT = re.compile(r"[0-9]{1,12}")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]{0,63}/[A-Za-z0-9][\w.+-]{0,63}")


class Malformed(ValueError):
    """A signed webhook whose field we cannot use: answered 400 naming the field, nothing published."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def sid(params: Mapping[str, str], *names: str) -> str:
    """The first non-empty of `names` (e.g. MessageSid, then the legacy SmsSid), checked."""
    for name in names:
        value = params.get(name, "")
        if value:
            if not _SID.fullmatch(value):
                raise Malformed(name, "not a Twilio SID")
            return value
    raise Malformed(names[0], "required")


def optional_sid(params: Mapping[str, str], name: str) -> str | None:
    return sid(params, name) if params.get(name) else None


def bounded_int(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """An integer field in [low, high]; None when absent or empty; anything else is Malformed."""
    value = params.get(name, "")
    if not value:
        return None
    if not _INT.fullmatch(value) or not low <= int(value) <= high:
        raise Malformed(name, f"expected a whole number from {low} to {high}")
    return int(value)


def url(params: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL Twilio gave us (media, recordings); None when absent."""
    value = params.get(name, "")
    if not value:
        return None
    if len(value) > MAX_URL or not value.startswith(("https://", "http://")) or not value.isprintable():
        raise Malformed(name, "expected an http(s) URL")
    return value


def media(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """(URL, content type) of each attachment of an MMS, NumMedia of them at most MAX_MEDIA."""
    found: list[tuple[str, str]] = []
    for index in range(bounded_int(params, "NumMedia", 0, MAX_MEDIA) or 0):
        link = url(params, f"MediaUrl{index}")
        if link is None:
            continue
        kind = params.get(f"MediaContentType{index}", "") or "application/octet-stream"
        if not _CONTENT_TYPE.fullmatch(kind):
            raise Malformed(f"MediaContentType{index}", "not a media type")
        found.append((link, kind))
    return found


def sender_phone(params: Mapping[str, str], region: str) -> str:
    """The E.164 number an SMS came from: anything else cannot be answered by SMS, so it is refused."""
    raw = params.get("From", "")
    if not raw:
        raise Malformed("From", "required")
    phone = parse.e164(raw, region)
    if phone is None:
        raise Malformed("From", "not a phone number")
    return phone


def caller_label(raw: str) -> str:
    """A caller id fit to quote in a subject when it is not a phone number; empty when it is unfit."""
    label = raw.strip()
    return label if len(label) <= MAX_LABEL and label.isprintable() else ""
