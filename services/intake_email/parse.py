"""Turn raw RFC 5322 bytes into a parsed support email: text, trimmed body, sender, thread keys, nature."""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import email
import email.policy
import email.utils
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from services.contracts.requests import Nature, Priority
from services.contracts.threading import find_subject_token, verify_message_id
from services.intake_email.address import mailboxes, unquoted
from services.intake_email.attachments import message_part_bodies

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
_LEGACY_CHARSETS = ("cp932", "euc_jp", "gb18030", "big5", "cp949", "cp1252")
# ...unless nothing in the message hints at East Asian text: then raw bytes are far more likely Latin-1
# or windows-1252 ("Bérénice"), which cp932 would also "decode" strictly, into nonsense.
_WESTERN_FIRST = ("cp1252", *_LEGACY_CHARSETS[:-1])
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

DEFAULT_EMERGENCY = ("down", "outage", "urgent", "emergency", "offline", "not working")


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
    except (LookupError, ValueError):  # ValueError: a label with a NUL byte in it
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


class _Lookahead:
    """What `_cuts_here` needs from the lines after line i, computed for all lines in one backward pass.

    Looking ahead by scanning (or slicing) the rest of the list from every line made trimming quadratic
    in the line count: a 1 MB body took seconds, a 5 MB one minutes. Both facts only look forward, so
    they hold unchanged for any suffix of the lines, which is what trimming a reply below a quote reads.
    """

    def __init__(self, lines: list[str]) -> None:
        n = len(lines)
        # next_text[i]: index of the first non-blank line after i (n when there is none).
        self.next_text = [n] * n
        # quotes_only[i]: no line from i on is both non-blank and not a quote (quotes_only[n] is True).
        self.quotes_only = [True] * (n + 1)
        following = n
        for i in range(n - 1, -1, -1):
            self.next_text[i] = following
            if lines[i].strip():
                following = i
                self.quotes_only[i] = self.quotes_only[i + 1] and _is_quote(lines[i])
            else:
                self.quotes_only[i] = self.quotes_only[i + 1]


_TIME_OF_DAY = re.compile(r"\d:\d\d")
# What may follow the verb in _ATTRIBUTION_END; none of these characters ends one of its verbs.
_ATTRIBUTION_TAIL = frozenset(":-")
# Longer than any verb in _ATTRIBUTION_END (they match character for character, so at their own length).
_LONGEST_VERB = 16


def _ends_with_attribution(stripped: str) -> bool:
    """_ATTRIBUTION_END.search(stripped), without trying its verbs at every position of a long line.

    A match ends the line, so its verb ends where the trailing run of whitespace, colons and dashes
    begins, and it starts at most _LONGEST_VERB characters before that; the pattern looks at nothing
    before its verb, so searching from there finds a match exactly when searching the whole line does.
    """
    end = len(stripped)
    while end and (stripped[end - 1].isspace() or stripped[end - 1] in _ATTRIBUTION_TAIL):
        end -= 1
    return _ATTRIBUTION_END.search(stripped, max(0, end - _LONGEST_VERB)) is not None


def _names_someone(line: str) -> bool:
    """re.search(r'@|<|"|\\d:\\d\\d', line) as substring tests: a regex alternation is slow on long lines."""
    return (
        "@" in line or "<" in line or '"' in line or (":" in line and _TIME_OF_DAY.search(line) is not None)
    )


def _cuts_here(lines: list[str], i: int, ahead: _Lookahead) -> bool:
    line = lines[i]
    stripped = line.strip()
    if not stripped:
        return False
    if _DELIMITER.match(line.replace("*", "")) or _SIGNOFF.match(line) or _RULE.match(line):
        return True
    following = lines[ahead.next_text[i]] if ahead.next_text[i] < len(lines) else ""
    if _ends_with_attribution(stripped):
        return True
    for k in range(1, 4):
        window = lines[i : i + k]
        if not all(w.strip() for w in window) or not _names_someone(window[0]):
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
    return _is_quote(line) and ahead.quotes_only[i]


def _first_cut(lines: list[str], start: int, ahead: _Lookahead) -> int:
    """The index of the first line from `start` on where the new text ends (len(lines) if it never does)."""
    fenced = False
    for i in range(start, len(lines)):
        if lines[i].strip().startswith("```"):
            fenced = not fenced  # code blocks are content, whatever their characters look like
            continue
        if not fenced and _cuts_here(lines, i, ahead):
            return i
    return len(lines)


def trim_reply(text: str) -> str:
    """What the sender wrote now: drop quoted replies, forwarded headers, signatures, mobile sign-offs."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ahead = _Lookahead(lines)
    # Each round trims the lines from `start` on as a message of its own; a reply written below a quote
    # or a bare forward starts the next round further down. A loop rather than recursion: a body of
    # thousands of delimiter lines would otherwise exceed the recursion limit and lose the mail.
    start = 0
    while True:
        cut = _first_cut(lines, start, ahead)
        trimmed = "\n".join(lines[start:cut]).strip()
        if trimmed:
            return trimmed
        if cut < len(lines):
            below = cut + 1
            if not _FORWARD.match(lines[cut]):
                # A reply written below the quote: skip the attribution and the quoted block.
                while below < len(lines) and (not lines[below].strip() or _is_quote(lines[below])):
                    below += 1
                if below < len(lines):
                    start = below
                    continue
            else:
                # A bare forward: what matters is the forwarded message below its header block.
                while below < len(lines) and lines[below].strip():
                    below += 1
                start = below
                continue
        # A message that is only a quote keeps it: dropping everything would lose what was sent.
        return text.strip() if start == 0 else "\n".join(lines[start:]).strip()


# -- message-level parsing -------------------------------------------------------------------


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


def _parse_message(raw: bytes) -> Message:
    try:
        msg = email.message_from_bytes(raw, policy=_QUICK_POLICY)
        # Touch the headers we read: the header registry raises lazily on some broken ones.
        for name in ("from", "subject", "date", "message-id", "sender", "to"):
            msg.get(name)
        return msg
    except Exception:
        return email.message_from_bytes(raw, policy=email.policy.compat32)


def _decode_strict(data: bytes, codecs_in_order: tuple[str, ...]) -> str:
    """The first codec that decodes every byte; latin-1 (total) when none does, so this never raises."""
    for codec in dict.fromkeys(codecs_in_order):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _declared_charsets(msg: Message) -> tuple[str, ...]:
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
    return tuple(dict.fromkeys((*found, *(_LEGACY_CHARSETS if east_asian else _WESTERN_FIRST))))


# As lenient as email.header: the text may contain "?" (seen in the wild, and in spoofing attempts).
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


def _decode_words(text: str, fallbacks: tuple[str, ...] = _LEGACY_CHARSETS) -> str:
    """RFC 2047 encoded words; a word whose bytes do not fit its label gets UTF-8, then `fallbacks`."""
    text = _BETWEEN_WORDS.sub("", text)
    out: list[str] = []
    pos = 0
    run = bytearray()
    run_label: str | None = None

    def flush() -> None:
        if run_label is not None:
            # Mislabeled words are common (Shift_JIS bytes labeled ISO-2022-JP): the label is a hint.
            out.append(_decode_strict(bytes(run), (charset_codec(run_label), "utf-8", *fallbacks)))

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


def _raw_header(msg: Message, name: str) -> str | None:
    """The header as it arrived (8-bit bytes kept as surrogate escapes), before any policy decoding."""
    try:
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                return str(value)
    except Exception:
        pass
    return None


def _raw_text(msg: Message, name: str) -> str:
    """The header as it arrived, with any undeclared 8-bit bytes decoded (never surrogate escapes)."""
    raw = _raw_header(msg, name) or ""
    if _has_8bit(raw):
        return _decode_strict(raw.encode("utf-8", "surrogateescape"), ("utf-8", *_declared_charsets(msg)))
    return raw


def _has_8bit(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _header(msg: Message, name: str) -> str:
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
        fallbacks = _declared_charsets(msg)
        if _has_8bit(raw):
            raw = _decode_strict(raw.encode("utf-8", "surrogateescape"), ("utf-8", *fallbacks))
        text = _decode_words(raw, fallbacks)
    elif "=?" in text:
        # Encoded words the policy left alone (e.g. one multi-byte character split across two words):
        # decode them from the header as it arrived, which the policy's partial decoding may have lost.
        text = _decode_words(raw if raw is not None else text, _declared_charsets(msg))
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
    return _decode_words(" ".join(str(part.get("Content-Description") or "").split()))


def _generated_name(part: Message, ctype: str) -> str:
    """A name for a part that carries none, in Zammad's order: Content-ID, embedded subject, type, "file"."""
    cid = re.match(r"<?([^<>@\s]+)@", str(part.get("Content-ID") or "").strip())
    if cid:
        return cid.group(1)
    description = _description(part)
    if ctype in _EMBEDDED_MESSAGES:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        subject = _header(inner, "Subject") if isinstance(inner, Message) else ""
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


def _embedded_bytes(part: Message, linesep: str = "\n") -> bytes:
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


def _walk(msg: Message, linesep: str = "\n") -> tuple[str, str, list[ParsedAttachment]]:
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
                embedded = _embedded_bytes(part, linesep)
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
            try:
                data = part.get_payload(decode=True)
            except Exception:
                data = None
            if not isinstance(data, bytes):
                payload = part.get_payload()
                data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
            name = filename or _generated_name(part, ctype)
            attachments.append(_attachment(part, ctype, data, _unique(name, taken)))
            continue
        if ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            html.append(_part_text(part))
    return "\n".join(plain), "\n".join(html), attachments


def _address(msg: Message) -> tuple[str | None, str | None]:
    """The sender's address and display name, read from the header as written (see address.mailboxes)."""
    for name in ("From", "Sender", "Return-Path"):
        value = _raw_text(msg, name)
        for box in mailboxes(value) if value.strip() else ():
            address = box.address
            if address and "=?" in address:
                # An encoded word in the address itself ("=?utf-8?Q?agent?=@example.com"), never one
                # from the display name: decoded, it must still be one address.
                decoded = mailboxes(_decode_words(address))
                address = decoded[0].address if len(decoded) == 1 else None
            if address:
                display = _decode_words(unquoted(box.display), _declared_charsets(msg))
                return address, " ".join(display.split()) or None
    return None, None


def _as_received(
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
            wrapper = _parse_message(f"Content-Type: {item.content_type}{linesep}{linesep}".encode() + body)
            try:
                same = _embedded_bytes(wrapper, linesep) == item.data
            except Exception:
                same = False
            if same:
                out[index] = dataclasses.replace(item, data=body, encoded=body)
                bodies.remove((start, end))
                break
    return out


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
    r"warning: could not send|mail system error|undelivered|permanent error|delivery report|"
    r"メールエラー",
    re.IGNORECASE,
)
_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|post_master|post-master|mail-daemon|mailerdaemon|bounce[s]?)@",
    re.IGNORECASE,
)
# Amazon SES delivers bounce and complaint notifications as JSON in a plain mail from SNS.
# The JSON may arrive as is or escaped inside an SNS envelope's "Message" string (\"...\").
_SES_NOTICE = re.compile(rb'\\?"notificationType\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery)')


def _ses_notice(msg: Message) -> str | None:
    try:
        if msg.is_multipart():
            return None
        payload = msg.get_payload(decode=True)
    except Exception:
        return None
    found = _SES_NOTICE.search(payload) if isinstance(payload, bytes) else None
    return found.group(1).decode() if found else None


def classify(msg: Message, sender: str | None, subject: str) -> Nature:
    """Loop and noise detection: a bounce, an out-of-office or another automatic message."""
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    return_path = _header(msg, "Return-Path")
    has_dsn = any(
        p.get_content_type() in ("message/delivery-status", "message/feedback-report") for p in msg.walk()
    )
    ses = _ses_notice(msg)
    has_rfc822 = any(p.get_content_type() == "message/rfc822" for p in msg.walk())
    if (
        report_type in ("delivery-status", "feedback-report")
        or has_dsn
        or (sender is not None and _DAEMON.match(sender))
        or _BOUNCE_SUBJECT.search(subject)
        or ses in ("Bounce", "Complaint")
        # Hotmail's complaint loop (JMRP): a fixed subject plus the complained-about message attached.
        or (subject.lower().startswith("complaint about message from") and has_rfc822)
    ):
        return "bounce"
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    precedence = _header(msg, "Precedence").lower()
    autoreply_headers = any(
        _header(msg, h)
        for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Apple-Action")
    )
    automatic = (auto_submitted not in ("", "no")) or autoreply_headers or bool(precedence)
    # "Out of office" is unambiguous; "vacation" only counts when the message is marked automatic.
    # iCloud marks its vacation replies with X-Apple-Action: VACATION and nothing standard.
    vacation = _header(msg, "X-Apple-Action").upper() == "VACATION"
    if vacation or _OOO_STRONG.search(subject) or (automatic and _OOO_SUBJECT.search(subject)):
        return "out_of_office"
    if (
        (auto_submitted and auto_submitted != "no")
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or autoreply_headers
        or return_path.replace(" ", "") == "<>"
        or ses == "Delivery"  # SES telling us a message arrived: machine mail, not a request
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
                        found.extend(_ids(_raw_text(inner, "Message-ID")))
                # A blank line before the returned headers makes them the embedded message's body text.
                text = _embedded_bytes(part).decode("utf-8", "replace")
                found.extend(m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(text))
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
        # The line ending of the first line: what an embedded message is re-serialized with.
        first = raw.find(b"\n")
        linesep = "\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else "\n"
        plain, html, attachments = _walk(msg, linesep)
        attachments = _as_received(raw, msg, attachments, linesep)
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
        # A token whose signature does not verify is no token at all (not even a bare one).
        ticket_token=token.ticket_number if token and not token.forged else None,
        token_signed=bool(token and token.signed),
        token_forged=bool(token and token.forged),
        references_ours=references_ours,
        nature=nature,
        priority_hint="emergency" if hits else "normal",
        hints=tuple(f"keyword:{k}" for k in hits),
        attachments=tuple(attachments),
    )
