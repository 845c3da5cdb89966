"""quotes.py: reply trimming, its one-pass lookahead and its bounded attribution search."""

from __future__ import annotations

import re

from services.intake_email.mail import parse, trim_reply
from services.intake_email.mail.quotes import (
    _ATTRIBUTION_END,
    _ATTRIBUTION_VERBS,
    _LONGEST_VERB,
    _VERB_LAST,
    _ends_with_attribution,
    _Lookahead,
)
from tests.intake_email.mail.samples import SECRET, mail


def test_trimmer_drops_quotes_signatures_and_mobile_signoffs() -> None:
    text = "It broke again.\n\nSent from my iPhone\n\nOn Mon, 1 Jan 2026, Bob <b@x> wrote:\n> earlier"
    assert trim_reply(text) == "It broke again."
    assert trim_reply("Fixed?\n-- \nAlice\nACME") == "Fixed?"
    outlook = "Yes.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: Q"
    assert trim_reply(outlook) == "Yes."
    headers = "Thanks\n\nFrom: Bob <b@x>\nSent: Monday, 1 Jan\nTo: help@x\nSubject: Q\n\nold"
    assert trim_reply(headers) == "Thanks"


def test_lookahead_agrees_with_scanning_the_following_lines() -> None:
    lines = ["", "text", "> q", "", "  ", "| q", "more", "", "> q", "", "> q", ""]
    ahead = _Lookahead(lines)
    for i in range(len(lines)):
        after = [j for j in range(i + 1, len(lines)) if lines[j].strip()]
        assert ahead.next_text[i] == (after[0] if after else len(lines))
        rest = [w for w in lines[i:] if w.strip()]
        assert ahead.quotes_only[i] == all(w.lstrip().startswith((">", "|")) for w in rest)
    assert ahead.quotes_only[len(lines)]
    assert [i for i in range(len(lines)) if ahead.quotes_only[i]] == [7, 8, 9, 10, 11]


def test_trimming_200k_lines_looks_ahead_once() -> None:
    # Inline replies all the way down, so every line is looked at: the lookahead that used to copy the
    # rest of the list per line made this minutes of work. Kept here for the result; bench.parse times it.
    reply = "I tried that.\n> Did you restart it?\n\nYes, twice.\n" * 50_000
    assert len(reply.splitlines()) == 200_000
    assert trim_reply(reply) == reply.strip()
    quoted_tail = "\n".join(f"> earlier line {i}" for i in range(50_000))
    assert trim_reply(reply + "\n" + quoted_tail) == reply.strip()
    below = "On Mon, 1 Jan 2026, Bob <b@x> wrote:\n" + quoted_tail + "\n\nMy answer, below the quote."
    assert trim_reply(below) == "My answer, below the quote."


def test_attribution_search_from_the_line_end_agrees_with_searching_the_whole_line() -> None:
    verbs = re.match(r"\(\?:([^()]*)\)", _ATTRIBUTION_END.pattern)
    assert verbs is not None
    assert max(len(v) for v in verbs.group(1).split("|")) < _LONGEST_VERB
    padding = "The printer shows error 50.4 after every third page. " * 40
    for line in [
        "On Mon, Bob wrote:",
        "Bob a écrit :",
        "Am 1. Jan schrieb Bob: ----",
        "Bob WROTE",
        "Bob rewrote:   -- ",
        "Bob wrote: :",
        "Bob wrote -",
        "Bob wrote" + " " * 40 + ":" + " " * 40 + "-----",
        "Bob 寫道:",
        "wrote:",
        ":",
        "-----",
        "nothing to see",
    ]:
        for text in (line, padding + line, line + padding):
            assert _ends_with_attribution(text) == bool(_ATTRIBUTION_END.search(text)), text


def test_thousands_of_delimiters_before_the_text_do_not_lose_the_mail() -> None:
    # Each delimiter starts another round of trimming below it; as recursion this hit the recursion
    # limit and the parse raised.
    text = "-----\n" * 5_000 + "The printer is down."
    assert trim_reply(text) == "The printer is down."
    parsed = parse(mail("From: a@b.c\nSubject: x", text), secret=SECRET)
    assert parsed.body == "The printer is down." and parsed.full_text == text


def test_the_last_character_filter_folds_case_as_the_attribution_pattern_does() -> None:
    # _ends_with_attribution answers False when the line's last character cannot end a verb: that
    # shortcut is only right if the class matches exactly the characters the pattern's verbs end in.
    verbs = _ATTRIBUTION_VERBS.split("|")
    literal = re.compile("|".join(re.escape(v[-1]) for v in verbs), re.IGNORECASE)
    for code in range(0x110000):
        c = chr(code)
        assert bool(_VERB_LAST.fullmatch(c)) == bool(literal.fullmatch(c)), hex(code)
    for line in ["#reply#>writes:", "Bob WRITES", "Bob написала:", "Bob YAZDI:", "Bob kirjoitti -- "]:
        assert _ends_with_attribution(line) == bool(_ATTRIBUTION_END.search(line)), line
