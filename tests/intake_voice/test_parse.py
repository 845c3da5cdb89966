"""Tech SMS verbs, consent keywords, IVR choices and phone normalization."""

from __future__ import annotations

import pytest

from services.intake_voice import parse


@pytest.mark.parametrize(
    ("text", "verb", "ticket", "minutes", "reason"),
    [
        ("A", "accept", None, None, ""),
        ("ack", "accept", None, None, ""),
        ("1042 A", "accept", "SR-1042", None, ""),
        ("SR-1042 ETA 30", "eta", "SR-1042", 30, ""),
        ("eta 45min", "eta", None, 45, ""),
        ("DELAY 20 stuck in traffic", "delay", None, 20, "stuck in traffic"),
        ("sr1042 delay 15 parts", "delay", "SR-1042", 15, "parts"),
        ("DONE", "done", None, None, ""),
        ("SR-7 done", "done", "SR-7", None, ""),
        ("ETA soon", "unknown", None, None, ""),
        ("on my way", "unknown", None, None, ""),
        ("", "unknown", None, None, ""),
        ("1042", "unknown", None, None, ""),
    ],
)
def test_tech_reply(text: str, verb: str, ticket: str | None, minutes: int | None, reason: str) -> None:
    reply = parse.tech_reply(text)
    assert (reply.verb, reply.ticket_number, reply.minutes, reply.reason) == (verb, ticket, minutes, reason)


@pytest.mark.parametrize("word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT "])
def test_opt_out_keywords(word: str) -> None:
    assert parse.opt_keyword(word) is True


@pytest.mark.parametrize("word", ["START", "yes", "UNSTOP"])
def test_opt_in_keywords(word: str) -> None:
    assert parse.opt_keyword(word) is False


def test_ordinary_text_is_not_a_keyword() -> None:
    assert parse.opt_keyword("please stop the leak") is None


@pytest.mark.parametrize(
    ("digits", "speech", "choice"),
    [
        ("1", "", "emergency"),
        ("2", "", "new"),
        ("3", "", "existing"),
        ("9", "", "billable"),
        ("7", "", None),
        ("", "It's an emergency!", "emergency"),
        ("", "new request please", "new"),
        ("", "existing ticket", "existing"),
        ("", "hello?", None),
        ("2", "emergency", "new"),
    ],
)
def test_ivr_choice(digits: str, speech: str, choice: str | None) -> None:
    assert parse.ivr_choice(digits, speech) == choice


def test_ticket_number_from_keys_or_speech() -> None:
    assert parse.ticket_number("1042#", "") == "SR-1042"
    assert parse.ticket_number("", "ticket 10 42") == "SR-1042"
    assert parse.ticket_number("", "I don't know") is None


def test_e164() -> None:
    assert parse.e164("(312) 555-0123") == "+13125550123"
    assert parse.e164("+44 20 7946 0958") == "+442079460958"
    assert parse.e164("anonymous") is None
