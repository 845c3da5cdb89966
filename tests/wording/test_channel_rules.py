"""Channel rules over every template and every sample ticket: each (rule, template, sample) is one test.

SMS to clients: at most 2 GSM-7 segments, the acknowledgment in 1 when no fee is offered, never a
subject. Email never says "leave a message". Voice promises nothing before the menu and offers 9 only
with a fee. Clients are spoken to in the second person. Unknown senders never hear plan wording."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.wording import sanitize
from services.wording.catalog import Wording
from services.wording.samples import samples

WORDS = Wording()
SAMPLES = samples()


def cases(prefix: str) -> list[Any]:
    return [
        pytest.param(name, values, id=f"{name}#{i}")
        for name in WORDS.names()
        if name.startswith(prefix)
        for i, values in enumerate(SAMPLES[name])
    ]


def client_cases() -> list[Any]:
    return cases("sms/client_") + cases("email/client_")


def render(name: str, values: dict[str, Any]) -> str:
    return WORDS.render(name, **values)


@pytest.mark.parametrize(("name", "values"), cases("sms/client_"))
def test_client_sms_fits_two_segments(name: str, values: dict[str, Any]) -> None:
    text = sanitize.sms(render(name, values), limit=10_000)  # GSM-7, nothing cut: the template's own length
    assert sanitize.segments(text) <= 2, text


@pytest.mark.parametrize(("name", "values"), cases("sms/client_ack"))
def test_client_sms_ack_fits_one_segment_unless_a_fee_is_offered(name: str, values: dict[str, Any]) -> None:
    text = sanitize.sms(render(name, values), limit=10_000)
    assert sanitize.segments(text) <= (2 if values["fee"] else 1), text


@pytest.mark.parametrize(("name", "values"), cases("sms/client_"))
def test_client_sms_never_mentions_a_subject(name: str, values: dict[str, Any]) -> None:
    text = render(name, values)
    assert "subject" not in text.lower()
    assert not values["subject"] or values["subject"][:20] not in text  # nor quotes the subject line


@pytest.mark.parametrize(("name", "values"), cases("email/"))
def test_email_never_says_leave_a_message(name: str, values: dict[str, Any]) -> None:
    assert "leave a message" not in render(name, values).lower()


PROMISES = re.compile(r"leave a message|message|respond|call you|connect|technician|press", re.IGNORECASE)


@pytest.mark.parametrize(("name", "values"), cases("voice/greeting"))
def test_voice_greeting_promises_nothing_before_the_menu(name: str, values: dict[str, Any]) -> None:
    text = render(name, values)
    assert not PROMISES.search(text), text


@pytest.mark.parametrize(("name", "values"), cases("voice/menu"))
def test_voice_menu_offers_nine_only_with_a_fee(name: str, values: dict[str, Any]) -> None:
    text = render(name, values)
    assert ("press 9" in text.lower()) == bool(values["fee"])
    if values["fee"]:
        assert values["fee"] in text


@pytest.mark.parametrize(("name", "values"), client_cases())
def test_clients_are_spoken_to_in_the_second_person(name: str, values: dict[str, Any]) -> None:
    text = render(name, values).lower()
    assert re.search(r"\byou(r)?\b", text), text
    assert not re.search(r"\bthe client\b|\bclient's\b|\btheir request\b", text), text
    assert values["client_name"].lower()[:10] not in text  # never "Acme Manufacturing's request"


@pytest.mark.parametrize(
    ("name", "values"),
    [case for case in client_cases() + cases("voice/") if not case.values[1]["known"]],
)
def test_unknown_senders_hear_no_plan_wording(name: str, values: dict[str, Any]) -> None:
    text = render(name, values).lower()
    assert not re.search(r"\bplan\b|\bcovers?\b|\btier\b|premium|complimentary", text), text


@pytest.mark.parametrize(("name", "values"), cases("sms/"))
def test_every_sms_is_plain_gsm7(name: str, values: dict[str, Any]) -> None:
    text = render(name, values)
    assert sanitize.to_gsm(text) == text
