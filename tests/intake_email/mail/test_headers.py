"""headers.py: the plain-header fast path agrees with policy.default; sender fallbacks."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from services.intake_email.mail import parse
from services.intake_email.mail.headers import _plain_header_text
from tests.conftest import corpus
from tests.intake_email.mail.samples import SECRET, mail


def test_sender_falls_back_to_sender_and_return_path_and_survives_garbage() -> None:
    assert parse(
        mail("From: undisclosed\nSender: s@example.com\nSubject: x"), secret=SECRET
    ).sender_email == ("s@example.com")
    assert (
        parse(mail("Return-Path: <r@example.com>\nSubject: x"), secret=SECRET).sender_email == "r@example.com"
    )
    broken = parse(mail('From: "Bro, ken <bad@@x>\nSubject: x'), secret=SECRET)
    assert broken.subject == "x"
    assert parse(b"\x00\xff garbage without headers", secret=SECRET).message_id.endswith(
        "@frontdesk.invalid>"
    )


def test_sender_name_and_address_without_brackets() -> None:
    def sender(value: str) -> tuple[str | None, str | None]:
        parsed = parse(mail(f"From: {value}\nSubject: x"), secret=SECRET)
        return parsed.sender_email, parsed.sender_name

    assert sender("Test test@example.com") == ("test@example.com", "Test")
    assert sender("John Q. Public jq@example.com") == ("jq@example.com", "John Q. Public")
    # Inside brackets the spaces belong to the address: keep the one valid (quoted) spelling of it.
    assert sender('"x" <power quadrant@example.com>') == ('"power quadrant"@example.com', "x")


PLAIN_HEADERS = [
    ("From", "Client 3 <user3@acme.example>"),
    ("From", "user3@acme.example"),
    ("To", "<support@frontdesk.test>"),
    ("To", "a@b.example, Bob Smith <bob.smith+x@mail.example.org>,c@d.example"),
    ("Sender", "Help Desk 2 <help-desk_2@x-y.example>"),
    ("Subject", "Re: [SR-7-abc] Printer\ton floor 3 (jammed) #2"),
    ("Message-ID", "<bench-1-1700000000@acme.example>"),
    ("Date", "Mon, 1 Jan 2026 10:00:00 +0100"),
    ("Date", "Mon, 1 Jan 2026 10:00:00 -0000"),
    ("Date", "not a date"),
    ("Date", ""),
    ("Content-Type", "text/plain; charset=utf-8; format=flowed"),
    ("Content-Type", 'multipart/mixed;boundary="===============1234==/x"'),
    ("Content-Type", 'text/plain; charset=""'),
    ("Content-Type", "Text/HTML"),
    ("Content-Disposition", 'attachment; filename="log 1.bin"'),
    ("Content-Transfer-Encoding", "Quoted-Printable"),
    ("X-Autoreply", "yes"),
]
NOT_PLAIN_HEADERS = [
    ("From", '"Doe, John" <j@x.example>'),
    ("From", "John Q. Public <j@x.example>"),
    ("From", "j@x.example (John)"),
    ("Subject", "=?utf-8?q?St=C3=B6rung?="),
    ("Subject", "Caf\udce9"),
    ("Content-Type", "text/plain; charset=a; charset=b"),
    ("Content-Disposition", "attachment; filename*=utf-8''R%C3%A4.pdf"),
    ("Content-Type", 'text/plain; name="a\\"b"'),
    ("Message-ID", " <a@b>"),
    ("MIME-Version", "1.0"),
]


def registry_text(name: str, value: str) -> str:
    return str(email.policy.default.header_factory(name, value))


def test_plain_header_values_read_exactly_as_policy_default_reads_them() -> None:
    for name, value in PLAIN_HEADERS:
        assert _plain_header_text(name, value) == registry_text(name, value), (name, value)
    # Anything less plain is left to the header registry itself.
    for name, value in NOT_PLAIN_HEADERS:
        assert _plain_header_text(name, value) is None, (name, value)


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["zammad", "sisimai", "talon", "django-helpdesk"])
def test_plain_header_values_agree_with_policy_default_on_every_corpus_header(name: str) -> None:
    checked = 0
    for path in sorted(p for p in corpus(name).rglob("*") if p.is_file()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        for part in msg.walk():
            for key, raw in part.raw_items():
                value = re.sub(r"[\r\n]", "", str(raw))
                plain = _plain_header_text(key, value)
                if plain is not None:
                    assert plain == registry_text(key, value), (path.name, key, value)
                    checked += 1
    assert checked > 0
