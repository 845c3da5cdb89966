"""Reply trimming: what the sender wrote now, without quotes, forwarded headers, signatures, sign-offs."""

from __future__ import annotations

import re

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
_ATTRIBUTION_VERBS = (
    "wrote|writes|écrit|schrieb|escribió|scritto|schreef|escreveu|skrev|napisał|napsal|написал|"
    "написав|написала|kirjoitti|yazdı|寫道|写道"
)
_ATTRIBUTION_END = re.compile(rf"(?:{_ATTRIBUTION_VERBS})\s*:?\s*(?:-{{2,}})?\s*$", re.IGNORECASE)
# The last character of every verb there, matched with the same case folding as the pattern.
_VERB_LAST = re.compile(
    "[" + "".join(sorted({verb[-1] for verb in _ATTRIBUTION_VERBS.split("|")})) + "]", re.IGNORECASE
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
_COLON_END = re.compile(r":\s*$")
_ADDRESS_OR_TIME = re.compile(r"@|\d:\d\d")
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
_ATTRIBUTION_TAIL = ":-"
# Longer than any verb in _ATTRIBUTION_END (they match character for character, so at their own length).
_LONGEST_VERB = 16


def _ends_with_attribution(stripped: str) -> bool:
    """_ATTRIBUTION_END.search(stripped), without trying its verbs at every position of a long line.

    A match ends the line, so its verb ends where the trailing run of whitespace, colons and dashes
    begins, and it starts at most _LONGEST_VERB characters before that; the pattern looks at nothing
    before its verb, so searching from there finds a match exactly when searching the whole line does.
    Most lines end in a character no verb ends in: one character test answers for them.
    """
    text = stripped
    while True:
        shorter = text.rstrip().rstrip(_ATTRIBUTION_TAIL)
        if len(shorter) == len(text):
            break
        text = shorter
    end = len(text)
    if not end or _VERB_LAST.match(text, end - 1) is None:
        return False
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
    # An attribution names someone on its first line (most lines do not, so this is asked once).
    for k in range(1, 4) if _names_someone(line) else ():
        window = lines[i : i + k]
        if not all(w.strip() for w in window):
            break
        joined = " ".join(w.strip() for w in window)
        if _COLON_END.search(joined) and _VERB.search(joined) and _ADDRESS_OR_TIME.search(joined):
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
