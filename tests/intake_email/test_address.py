"""Mailboxes read as written: brackets win, display text (quoted, commented, encoded) is never an address."""

from __future__ import annotations

import pytest

from services.intake_email.address import mailboxes, unquoted


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("Jane Roe <Jane@Acme.Example>", ["jane@acme.example"]),
        ("jane@acme.example <mallory@evil.example>", ["mallory@evil.example"]),
        ("=?utf-8?q?a=0D=0Ab:_jane@acme.example?= <att10@evil.example>", ["att10@evil.example"]),
        ('"jane@acme.example, boss@acme.example" <m@evil.example>', ["m@evil.example"]),
        ("Mallory (jane@acme.example) <m@evil.example>", ["m@evil.example"]),
        ("Test test@example.com", ["test@example.com"]),
        ("jane@acme.example m@evil.example", [None]),  # two bare addresses: nobody for sure
        ("<jane@acme.example> <m@evil.example>", [None]),
        ("a@x.example, Bob <b@y.example>", ["a@x.example", "b@y.example"]),
        ("<@relay.example:user@host.example>", ["user@host.example"]),
        ('"your secret past" <power quadrant system@example.com>', ['"power quadrant system"@example.com']),
        ("undisclosed-recipients:;", []),
    ],
)
def test_mailboxes(value: str, addresses: list[str | None]) -> None:
    assert [box.address for box in mailboxes(value)] == addresses


def test_display_text_keeps_what_the_sender_wrote() -> None:
    (box,) = mailboxes('"Roe, Jane \\"JR\\"" <jane@acme.example>')
    assert unquoted(box.display) == 'Roe, Jane "JR"'
