"""The MIME walk: body text from plain and HTML parts, every other part an attachment with a unique name."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser

from services.intake_email.attachments import message_part_bodies
from services.intake_email.mail.charsets import decode_bytes, decode_words
from services.intake_email.mail.headers import header_text, parse_message


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool
    # The body as it arrived (still transfer-encoded), to find it in the raw original; None if unknown.
    encoded: bytes | None = None
    transfer_encoding: str = ""


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # html.parser is lenient, but a broken document must never lose the mail
        return re.sub(r"<[^>]+>", " ", html)
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _payload(part: Message) -> bytes | str:
    """The part's decoded bytes; failing that its text as it stands (a broken transfer encoding), else ""."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _part_text(part: Message) -> str:
    payload = _payload(part)
    return payload if isinstance(payload, str) else decode_bytes(payload, part.get_content_charset())


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        try:
            raw_name = part.get_param("name")
        except Exception:
            raw_name = None
        if isinstance(raw_name, tuple):
            name = email.utils.collapse_rfc2231_value(raw_name)
        elif isinstance(raw_name, str):
            name = raw_name
    if name and "=?" in name:
        name = decode_words(name)
    return name.strip() if name else None


# Unnamed parts get a name from their type, as Zammad names them: "<Content-Description or stem>.<ext>".
_NAMES_BY_TYPE = {
    "message/delivery-status": ("delivery-status", "txt"),
    "message/global-delivery-status": ("delivery-status", "txt"),
    "message/disposition-notification": ("disposition-notification", "txt"),
    "message/feedback-report": ("feedback-report", "txt"),
    "text/rfc822-headers": ("headers", "txt"),
    "message/global-headers": ("headers", "txt"),
    "text/plain": ("document", "txt"),
    "text/html": ("document", "html"),
    "text/calendar": ("calendar", "ics"),
    "video/quicktime": ("video", "mov"),
    "image/jpeg": ("image", "jpg"),
    "image/jpg": ("image", "jpg"),
    "image/png": ("image", "png"),
    "image/gif": ("image", "gif"),
}
_EMBEDDED_MESSAGES = ("message/rfc822", "message/global", "message/news")
# Part headers inside a "multipart" whose boundary never appears: its text is MIME, not a message body.
# Any line ending counts: CR-only (classic Mac) mail is one of the ways a boundary goes unseen.
_MIME_LINES = re.compile(r"(?:^|[\r\n])content-(?:type|transfer-encoding|disposition)\s*:", re.IGNORECASE)


def _description(part: Message) -> str:
    return decode_words(" ".join(str(part.get("Content-Description") or "").split()))


def _generated_name(part: Message, ctype: str) -> str:
    """A name for a part that carries none, in Zammad's order: Content-ID, embedded subject, type, "file"."""
    cid = re.match(r"<?([^<>@\s]+)@", str(part.get("Content-ID") or "").strip())
    if cid:
        return cid.group(1)
    description = _description(part)
    if ctype in _EMBEDDED_MESSAGES:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        subject = header_text(inner, "Subject") if isinstance(inner, Message) else ""
        return f"{subject or description or 'Mail'}.eml"
    if ctype in _NAMES_BY_TYPE:
        stem, ext = _NAMES_BY_TYPE[ctype]
        return f"{description or stem}.{ext}"
    return "file"


def _unique(name: str, taken: set[str]) -> str:
    """Zammad's scheme: a repeated name gets a counter before its extension (file, file1, file2...)."""
    stem, dot, ext = name.partition(".")
    if not stem:  # ".htaccess": the whole name is the stem
        stem, dot, ext = name, "", ""
    candidate, i = name, 0
    while candidate in taken:
        i += 1
        candidate = f"{stem}{i}{dot}{ext}"
    taken.add(candidate)
    return candidate


def embedded_bytes(part: Message, linesep: str = "\n") -> bytes:
    """The body of a message/* part that the parser split into sub-messages, serialized as it arrived."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return b""
    # compat32 without a line limit re-emits parsed headers unchanged (no refolding, 8-bit bytes kept);
    # with the message's own line ending the result is usually the very bytes inside the raw original.
    unchanged = email.policy.compat32.clone(max_line_length=0, linesep=linesep)
    return b"".join(inner.as_bytes(policy=unchanged) for inner in payload if isinstance(inner, Message))


def _attachment(part: Message, ctype: str, data: bytes, name: str) -> ParsedAttachment:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    cid = part.get("Content-ID")
    payload = part.get_payload()
    try:
        # The parser read the bytes as ASCII with surrogate escapes: this is the body exactly as it arrived.
        encoded = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else data
    except UnicodeError:
        encoded = None
    return ParsedAttachment(
        filename=name,
        content_type=ctype,
        data=data,
        content_id=str(cid).strip() if cid else None,
        inline=disposition == "inline" or (disposition == "" and cid is not None),
        encoded=encoded,
        transfer_encoding=" ".join(str(part.get("Content-Transfer-Encoding") or "").split()).lower(),
    )


def walk_parts(msg: Message, linesep: str = "\n") -> tuple[str, str, list[ParsedAttachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[ParsedAttachment] = []
    taken: set[str] = set()
    pending: list[Message] = [msg]
    while pending:
        part = pending.pop()
        ctype = part.get_content_type()
        if ctype.startswith("message/") and part.is_multipart():
            # A forwarded or bounced message, a delivery report: one attachment, as the sender sent it.
            # Its own text is not this message's text (bounce threading reads these parts separately).
            try:
                embedded = embedded_bytes(part, linesep)
            except Exception:
                embedded = b""
            name = _filename(part) or _generated_name(part, ctype)
            attachments.append(_attachment(part, ctype, embedded, _unique(name, taken)))
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                pending.extend(p for p in reversed(payload) if isinstance(p, Message))
            continue
        filename = _filename(part)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if ctype.startswith("multipart/") and not filename and disposition != "attachment":
            # No boundary line was found (a truncated or hand-made message). Readable text is the body;
            # only MIME-looking leftovers become an attachment, and nothing at all is not one.
            text = _part_text(part)
            if not text.strip():
                continue
            if not _MIME_LINES.search(text):
                plain.append(text)
                continue
        is_text = ctype in ("text/plain", "text/html")
        if filename or disposition == "attachment" or not is_text:
            payload = _payload(part)
            data = payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
            name = filename or _generated_name(part, ctype)
            attachments.append(_attachment(part, ctype, data, _unique(name, taken)))
            continue
        if ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            html.append(_part_text(part))
    return "\n".join(plain), "\n".join(html), attachments


def as_received(
    raw: bytes, msg: Message, attachments: list[ParsedAttachment], linesep: str
) -> list[ParsedAttachment]:
    """Forwarded and bounced messages as the bytes that arrived, where the raw original holds them.

    The parser re-serializes an embedded message, which is close to what arrived but not always the same
    bytes (an empty header gains a space): then it could not be a span of the raw original, and would
    be stored a second time. A raw body that re-serializes to exactly the same bytes is that message.
    """
    pending = [
        i for i, a in enumerate(attachments) if a.content_type.startswith("message/") and a.encoded == a.data
    ]
    if not pending:
        return attachments
    try:
        boundaries = [b for part in msg.walk() if part.is_multipart() and (b := part.get_boundary())]
    except Exception:
        return attachments
    bodies = [span for boundary in dict.fromkeys(boundaries) for span in message_part_bodies(raw, boundary)]
    out = list(attachments)
    for index in pending:
        item = out[index]
        for start, end in bodies:
            body = raw[start:end]
            wrapper = parse_message(f"Content-Type: {item.content_type}{linesep}{linesep}".encode() + body)
            try:
                same = embedded_bytes(wrapper, linesep) == item.data
            except Exception:
                same = False
            if same:
                out[index] = dataclasses.replace(item, data=body, encoded=body)
                bodies.remove((start, end))
                break
    return out
