"""Turn raw RFC 5322 bytes into a parsed support email: text, trimmed body, sender, thread keys, nature."""

from __future__ import annotations

import codecs
import email
import email.header
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from services.contracts.requests import Nature, Priority
from services.contracts.threading import find_subject_token, verify_message_id

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

DEFAULT_EMERGENCY = ("down", "outage", "urgent", "emergency", "offline", "not working")


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool


@dataclass(frozen=True)
class ParsedEmail:
    request_id: str
    message_id: str
    sender_email: str | None
    sender_name: str | None
    subject: str
    body: str
    full_text: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    ticket_token: str | None
    token_signed: bool
    token_forged: bool
    references_ours: bool
    nature: Nature
    priority_hint: Priority
    hints: tuple[str, ...]
    attachments: tuple[ParsedAttachment, ...] = field(default=())


def charset_codec(label: str | None) -> str:
    """A Python codec name for a MIME charset label; unknown labels fall back to UTF-8."""
    name = (label or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def decode_bytes(data: bytes, label: str | None) -> str:
    """Decode without ever raising: declared charset, then UTF-8, then latin-1 (total)."""
    codec = charset_codec(label)
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace") if codec != "utf-8" else data.decode("latin-1")


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


# -- reply trimming --------------------------------------------------------------------------

_QUOTE_HEADER = re.compile(
    r"^\s*(?:>\s*)?(?:On|Le|Am|El|Il|Op|Em|På|W dniu|Den|Dne)\b.{0,300}?"
    r"(?:wrote|écrit|schrieb|escribió|scritto|schreef|escreveu|skrev|napisał|napsal)\s*:?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_QUOTE_HEADER_LINE = re.compile(
    r"^\s*(?:On|Le|Am|El|Il|Op|Em|På|W dniu|Den|Dne)\s.*"
    r"(?:wrote|écrit|schrieb|escribió|scritto|schreef|escreveu|skrev|napisał|napsal)\s*:?\s*$",
    re.IGNORECASE,
)
_DELIMITER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine|"
    r"Mensaje original|Oorspronkelijk bericht|Messaggio originale|Původní zpráva|Oryginalna wiadomość|"
    r"Opprinnelig melding|Ursprungligt meddelande|Исходное сообщение|Пересылаемое сообщение|"
    r"Вихідне повідомлення|Mensagem original)\s*-{2,}"
    r"|_{5,}|Begin forwarded message:|-{5,}\s*$|={5,}\s*$)",
    re.IGNORECASE,
)
_HEADER_KEY = re.compile(
    r"^\s*\*?(?:From|Von|De|Van|Da|Od|Från|Fra|От|Від|发件人|寄件者|Sent|Date|Gesendet|Envoyé|Enviado|"
    r"Verzonden|Inviato|Wysłano|Skickat|Sendt|Отправлено|Надіслано|发送时间|To|An|À|Para|Aan|A|Do|Till|Til|"
    r"Кому|收件人|Subject|Betreff|Objet|Asunto|Onderwerp|Oggetto|Temat|Ämne|Emne|Тема|主题|Cc)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_FROM_KEY = re.compile(
    r"^\s*\*?(?:From|Von|De|Van|Da|Od|Från|Fra|От|Від|发件人|寄件者)\s*\*?\s*[:：]", re.IGNORECASE
)
_SIGNOFF = re.compile(
    r"^\s*(?:Sent from (?:my |Mail for |Yahoo|Outlook|Samsung)|Get Outlook for|Envoyé de mon|"
    r"Von meinem .* gesendet|Enviado desde mi|Verstuurd vanaf mijn|Inviato da)",
    re.IGNORECASE,
)


def trim_reply(text: str) -> str:
    """What the sender wrote now: drop quoted replies, forwarded headers, signatures, mobile sign-offs."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _DELIMITER.match(line) or _SIGNOFF.match(line) or line.rstrip() in ("--", "-- "):
            cut = i
            break
        if _QUOTE_HEADER_LINE.match(line):
            cut = i
            break
        # A quote header wrapped over up to three lines ("On Mon, ... <a@b>\nwrote:").
        if re.match(r"^\s*(?:On|Le|Am|El|Il|Op|Em|W dniu)\s", line, re.IGNORECASE) and i + 1 < len(lines):
            joined = " ".join(part.strip() for part in lines[i : i + 3])
            if _QUOTE_HEADER.match(joined):
                cut = i
                break
        if _FROM_KEY.match(line):
            window = [w for w in lines[i + 1 : i + 6] if w.strip()]
            if sum(1 for w in window if _HEADER_KEY.match(w)) >= 2:
                cut = i
                break
        if stripped.startswith(">"):
            # A quoted block: cut here unless the author writes again below (inline reply).
            rest = [w for w in lines[i:] if w.strip() and not w.strip().startswith(">")]
            if not rest:
                cut = i
                break
    kept = [line for line in lines[:cut] if not line.strip().startswith(">")]
    return "\n".join(kept).strip()


# -- message-level parsing -------------------------------------------------------------------


def _parse_message(raw: bytes) -> Message:
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        # Touch the headers we read: policy.default raises lazily on some broken ones.
        for name in ("from", "subject", "date", "message-id", "sender", "to"):
            msg.get(name)
        return msg
    except Exception:
        return email.message_from_bytes(raw, policy=email.policy.compat32)


def _decode_words(text: str) -> str:
    """RFC 2047 encoded words that policy.default left undecoded (e.g. under compat32)."""
    try:
        parts = email.header.decode_header(text)
    except Exception:
        return text
    return "".join(
        p.decode(charset_codec(c), errors="replace") if isinstance(p, bytes) else p for p, c in parts
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:
        value = None
        for key, raw_value in msg.raw_items() if isinstance(msg, EmailMessage) else msg.items():
            if key.lower() == name.lower():
                value = raw_value
                break
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:
        text = _decode_words(text)
    return " ".join(text.split())


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return decode_bytes(payload, part.get_content_charset())


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
        name = _decode_words(name)
    return name.strip() if name else None


def _walk(msg: Message) -> tuple[str, str, list[ParsedAttachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[ParsedAttachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part)
        is_text = ctype in ("text/plain", "text/html")
        if filename or disposition == "attachment" or not (is_text or ctype.startswith("message/")):
            try:
                data = part.get_payload(decode=True)
            except Exception:
                data = None
            if not isinstance(data, bytes):
                payload = part.get_payload()
                data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
            cid = part.get("Content-ID")
            attachments.append(
                ParsedAttachment(
                    filename=filename or f"part-{len(attachments) + 1}",
                    content_type=ctype,
                    data=data,
                    content_id=str(cid).strip() if cid else None,
                    inline=disposition == "inline" or (disposition == "" and cid is not None),
                )
            )
            continue
        if ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            html.append(_part_text(part))
    return "\n".join(plain), "\n".join(html), attachments


def _address(msg: Message) -> tuple[str | None, str | None]:
    for name in ("From", "Sender", "Return-Path"):
        value = _header(msg, name)
        if not value:
            continue
        try:
            pairs = getaddresses([value])
        except Exception:
            pairs = [parseaddr(value)]
        for display, candidate in pairs:
            addr = candidate.strip().strip("<>")
            if "@" in addr:
                return addr.lower(), display.strip() or None
        found = re.search(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", value)
        if found:
            return found.group(0).lower(), None
    return None, None


_MSGID = re.compile(r"<[^<>\s]+>")


def _ids(value: str) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value))


_OOO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?reply|abwesenheit|absence|"
    r"fuera de la oficina|réponse automatique|autosvar|vacation|on leave|afwezig",
    re.IGNORECASE,
)
_OOO_STRONG = re.compile(
    r"out of (?:the )?office|automatic reply|abwesenheitsnotiz|réponse automatique|autosvar|"
    r"fuera de la oficina",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status )?notification|delivery failure|returned mail|mail delivery|"
    r"failure notice|delivery has failed|non[- ]?delivery|could not be delivered|"
    r"message not delivered|unzustellbar|nicht zustellbar|rejected:|returned to sender|delivery problem|"
    r"warning: could not send|mail system error|undelivered|permanent error|delivery report",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounce[s]?)@", re.IGNORECASE)


def classify(msg: Message, sender: str | None, subject: str) -> Nature:
    """Loop and noise detection: a bounce, an out-of-office or another automatic message."""
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    return_path = _header(msg, "Return-Path")
    has_dsn = any(
        p.get_content_type() in ("message/delivery-status", "message/feedback-report") for p in msg.walk()
    )
    if (
        report_type in ("delivery-status", "feedback-report")
        or has_dsn
        or (sender is not None and _DAEMON.match(sender))
        or (return_path.replace(" ", "") == "<>" and _BOUNCE_SUBJECT.search(subject))
        or _BOUNCE_SUBJECT.search(subject)
    ):
        return "bounce"
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    precedence = _header(msg, "Precedence").lower()
    autoreply_headers = any(
        _header(msg, h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
    )
    automatic = (auto_submitted not in ("", "no")) or autoreply_headers or bool(precedence)
    # "Out of office" is unambiguous; "vacation" only counts when the message is marked automatic.
    if _OOO_STRONG.search(subject) or (automatic and _OOO_SUBJECT.search(subject)):
        return "out_of_office"
    if (
        (auto_submitted and auto_submitted != "no")
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or autoreply_headers
        or return_path.replace(" ", "") == "<>"
    ):
        return "auto_reply"
    return "request"


def parse(
    raw: bytes, *, secret: bytes, emergency_keywords: tuple[str, ...] = DEFAULT_EMERGENCY
) -> ParsedEmail:
    """Parse raw bytes; never raises on malformed input (the mail must not be lost)."""
    msg = _parse_message(raw)
    subject = _header(msg, "Subject")
    sender_email, sender_name = _address(msg)
    try:
        plain, html, attachments = _walk(msg)
    except Exception:
        plain, html, attachments = decode_bytes(raw, None), "", []
    full_text = plain.strip() if plain.strip() else html_to_text(html)
    message_id_values = _ids(_header(msg, "Message-ID"))
    message_id = (
        message_id_values[0]
        if message_id_values
        else f"<{hashlib.sha256(raw).hexdigest()[:32]}@frontdesk.invalid>"
    )
    date: datetime | None = None
    try:
        date_value = _header(msg, "Date")
        if date_value:
            date = parsedate_to_datetime(date_value)
            date = date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)
    except Exception:
        date = None
    in_reply_to = _ids(_header(msg, "In-Reply-To"))
    references = _ids(_header(msg, "References"))
    token = find_subject_token(subject, secret)
    references_ours = any(verify_message_id(ref, secret) for ref in in_reply_to + references)
    lowered = subject.lower()
    hits = tuple(k for k in emergency_keywords if re.search(rf"\b{re.escape(k.lower())}\b", lowered))
    request_id = "em-" + hashlib.sha256(f"{message_id}{sender_email or ''}".encode()).hexdigest()[:32]
    return ParsedEmail(
        request_id=request_id,
        message_id=message_id,
        sender_email=sender_email,
        sender_name=sender_name,
        subject=subject,
        body=trim_reply(full_text),
        full_text=full_text,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        ticket_token=token.ticket_number if token else None,
        token_signed=bool(token and token.signed),
        token_forged=bool(token and token.forged),
        references_ours=references_ours,
        nature=classify(msg, sender_email, subject),
        priority_hint="emergency" if hits else "normal",
        hints=tuple(f"keyword:{k}" for k in hits),
        attachments=tuple(attachments),
    )
