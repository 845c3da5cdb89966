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
    r"^\s*(?:Sent (?:from|via|with) \S|Get Outlook for|Envoy[ée] (?:de|depuis) mon|"
    r"Von meinem .* gesendet|Diese Nachricht wurde von meinem|Enviado desde mi|Enviado do meu|"
    r"Verstuurd vanaf mijn|Inviato da|Skickat från min|Sendt fra min|Wysłane z mojego|"
    r"Отправлено с моего|From my (?:iphone|ipad|android|mobile))",
    re.IGNORECASE,
)
# A line of only punctuation ("-----", "___", "***", "ᐧ") marks the start of a signature or quote.
_RULE = re.compile(r"^\s*(?:[-_=*#~+]{2,}|ᐧ)\s*$")
# The attribution line of a quote in many languages and clients, ending in "wrote:" or similar.
_ATTRIBUTION_END = re.compile(
    r"(?:wrote|writes|écrit|schrieb|escribió|scritto|schreef|escreveu|skrev|napisał|napsal|написал|"
    r"написав|написала|kirjoitti|yazdı|寫道|写道)\s*:?\s*(?:-{2,})?\s*$",
    re.IGNORECASE,
)
_DATED_LINE = re.compile(r"^\s*\d{1,4}[-./]\d{1,2}[-./]\d{1,4}\b")


_ATTRIBUTION_START = re.compile(
    r"^\s*(?:-{2,}\s*)?(?:On|Le|Am|El|Il|Op|Em|På|W dniu|Den|Dne|"
    r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}|\d{1,2}\s+\S+\s+\d{4})\b",
    re.IGNORECASE,
)
_VERB = re.compile(
    r"\b(?:wrote|writes|écrit|schrieb|escribió|scritto|schreef|geschreven|escreveu|skrev|napisał|napsal|"
    r"написал|написав|написала|kirjoitti|yazdı)\b|寫道|写道",
    re.IGNORECASE,
)
_YEAR_AND_TIME = re.compile(r"\b(?:19|20)\d{2}\b.*\b\d{1,2}:\d{2}\b")
_FORWARD = re.compile(r"^\s*(?:-{2,}\s*Forwarded message|Begin forwarded message)", re.IGNORECASE)


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith((">", "|"))


def _cuts_here(lines: list[str], i: int) -> bool:
    line = lines[i]
    stripped = line.strip()
    if not stripped:
        return False
    if _DELIMITER.match(line.replace("*", "")) or _SIGNOFF.match(line) or _RULE.match(line):
        return True
    following = next((w for w in lines[i + 1 :] if w.strip()), "")
    if _ATTRIBUTION_END.search(stripped):
        return True
    for k in range(1, 4):
        window = lines[i : i + k]
        if not all(w.strip() for w in window) or not re.search(r'@|<|"|\d:\d\d', window[0]):
            break
        joined = " ".join(w.strip() for w in window)
        if re.search(r":\s*$", joined) and _VERB.search(joined) and re.search(r"@|\d:\d\d", joined):
            return True
    if _ATTRIBUTION_START.match(line):
        # The attribution may wrap over up to four lines ("Am 03.02.2016 schrieb X <\nx@y>:").
        for k in range(1, 5):
            joined = " ".join(w.strip() for w in lines[i : i + k])
            if joined.endswith((":", "----")) and (_VERB.search(joined) or _YEAR_AND_TIME.search(joined)):
                return True
        if _YEAR_AND_TIME.search(stripped) or (
            _DATED_LINE.match(line) and (not following or _is_quote(following))
        ):
            return True
    if _FROM_KEY.match(line):
        window = [w for w in lines[i + 1 : i + 6] if w.strip()]
        if sum(1 for w in window if _HEADER_KEY.match(w)) >= 2:
            return True
    # A trailing quoted block ends the message; quotes followed by new text are an inline reply.
    return _is_quote(line) and not any(w.strip() and not _is_quote(w) for w in lines[i:])


def trim_reply(text: str) -> str:
    """What the sender wrote now: drop quoted replies, forwarded headers, signatures, mobile sign-offs."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    fenced = False
    for i, line in enumerate(lines):
        if line.strip().startswith("```"):
            fenced = not fenced  # code blocks are content, whatever their characters look like
            continue
        if not fenced and _cuts_here(lines, i):
            cut = i
            break
    trimmed = "\n".join(lines[:cut]).strip()
    if not trimmed and cut < len(lines) and not _FORWARD.match(lines[cut]):
        # A reply written below the quote: skip the attribution and the quoted block.
        rest = lines[cut + 1 :]
        while rest and (not rest[0].strip() or _is_quote(rest[0])):
            rest = rest[1:]
        if rest:
            return trim_reply("\n".join(rest))
    if not trimmed and cut < len(lines) and _FORWARD.match(lines[cut]):
        # A bare forward: what matters is the forwarded message below its header block.
        rest = lines[cut + 1 :]
        while rest and rest[0].strip():
            rest = rest[1:]
        return trim_reply("\n".join(rest))
    # A message that is only a quote keeps it: dropping everything would lose what was sent.
    return trimmed if trimmed else text.strip()


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


_QUOTED_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _bounced_ids(msg: Message, full_text: str) -> tuple[str, ...]:
    """Message-IDs of the original message carried by a bounce (RFC 3464 parts or quoted headers)."""
    found: list[str] = []
    try:
        for part in msg.walk():
            kind = part.get_content_type()
            if kind in ("message/rfc822", "message/global"):
                for inner in part.get_payload() or []:
                    if isinstance(inner, Message):
                        found.extend(_ids(str(inner.get("Message-ID", ""))))
            elif kind in ("text/rfc822-headers", "message/global-headers"):
                payload = part.get_payload(decode=True)
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
                found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(text))
    except Exception:
        pass
    found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(full_text))
    return tuple(dict.fromkeys(found))


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
    nature = classify(msg, sender_email, subject)
    if nature == "bounce":
        # A bounce is about a message we sent: its Message-ID (inside the DSN, or quoted by a vendor
        # format) threads the bounce to the original ticket instead of opening a new one.
        references = references + tuple(i for i in _bounced_ids(msg, full_text) if i not in references)
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
        nature=nature,
        priority_hint="emergency" if hits else "normal",
        hints=tuple(f"keyword:{k}" for k in hits),
        attachments=tuple(attachments),
    )
