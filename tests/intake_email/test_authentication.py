"""Pure sender-authentication rules: the From that is checked, trusted Authentication-Results, alignment."""

from __future__ import annotations

import email.parser
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake_email.authentication import (
    Headers,
    Policy,
    aligned,
    from_domain,
    headers,
    organizational_domain,
    pick_policy,
    policy,
    upstream,
    verdict,
)

ID = "mx.frontdesk.test"


def mail(*lines: str) -> bytes:
    return "\r\n".join((*lines, "Subject: x", "", "hi", "")).encode()


@pytest.mark.parametrize(
    ("lines", "trusted"),
    [
        ((f"Authentication-Results: {ID}; dmarc=pass header.from=acme.example",), True),
        ((f"Authentication-Results: {ID.upper()}; dmarc=pass",), True),  # ids compare case-insensitively
        ((f"Authentication-Results: {ID}; dmarc=fail header.from=acme.example",), False),
        ((f"Authentication-Results: {ID}; spf=pass smtp.mailfrom=acme.example",), False),  # no dmarc
        (("Authentication-Results: mx.evil.example; dmarc=pass header.from=acme.example",), False),
        ((f"Authentication-Results: {ID}.evil.example; dmarc=pass",), False),
        ((f"Authentication-Results: {ID}; dmarc=pass header.from=evil.example",), False),  # other domain
        # Only the topmost header with our id counts: one further down came from outside.
        (
            (
                f"Authentication-Results: {ID}; dmarc=fail header.from=acme.example",
                f"Authentication-Results: {ID}; dmarc=pass header.from=acme.example",
            ),
            False,
        ),
        ((f"Authentication-Results: {ID} ;;; garbage",), False),
        ((), False),
    ],
)
def test_upstream_trusts_only_our_relays_dmarc_pass(lines: tuple[str, ...], trusted: bool) -> None:
    auth = upstream(headers(mail(*lines, "From: Jane <jane@acme.example>")), ID)
    assert auth.method == "upstream" and auth.reason
    assert auth.verdict == ("authenticated" if trusted else "unauthenticated")


@pytest.mark.parametrize(
    ("froms", "domain"),
    [
        (("Jane <jane@acme.example>",), "acme.example"),
        (("jane@acme.example <mallory@evil.example>",), "evil.example"),
        (("=?utf-8?q?a=0D=0Ab:_jane@acme.example?= <att10@evil.example>",), "evil.example"),
        (('"jane@acme.example" <mallory@evil.example>',), "evil.example"),
        (("Jane <jane@acme.example>", "Mallory <m@evil.example>"), None),  # two From headers
        (("jane@acme.example, m@evil.example",), None),  # two mailboxes
        (("<jane@acme.example> <m@evil.example>",), None),
        (("undisclosed-recipients:;",), None),
        ((), None),
    ],
)
def test_the_from_domain_is_read_as_written_and_must_be_one(
    froms: tuple[str, ...], domain: str | None
) -> None:
    found, why = from_domain(headers(mail(*(f"From: {f}" for f in froms))))
    assert found == domain
    assert bool(why) == (domain is None)


def test_dmarc_records_and_alignment() -> None:
    assert policy("v=DMARC1; p=reject; adkim=s") == Policy(p="reject", adkim="s", aspf="r")
    assert policy("v=spf1 -all") is None and policy("p=reject; v=DMARC1") is None
    assert pick_policy(["v=spf1 -all", "v=DMARC1; p=none"]) == Policy()
    assert pick_policy(["v=DMARC1; p=none", "v=DMARC1; p=reject"]) is None  # two records: none applies
    assert organizational_domain("mail.eu.acme.example") == "acme.example"
    assert organizational_domain("a.b.foo.co.uk") == "foo.co.uk"
    assert aligned("mail.acme.example", "acme.example", "r")
    assert not aligned("mail.acme.example", "acme.example", "s")
    assert not aligned("acme.co.uk", "evil.co.uk", "r")


@pytest.mark.parametrize(
    ("spf", "spf_domain", "dkim", "record", "authenticated"),
    [
        ("none", "", ["acme.example"], None, True),  # aligned DKIM, no record published
        ("pass", "bounce.acme.example", [], Policy(p="reject"), True),  # relaxed SPF alignment
        ("pass", "bounce.acme.example", [], Policy(p="reject", aspf="s"), False),
        ("pass", "evil.example", [], Policy(p="reject"), False),  # SPF passed for someone else
        ("fail", "acme.example", [], Policy(p="none"), False),
        ("none", "", ["evil.example"], Policy(p="reject"), False),  # DKIM passed for someone else
    ],
)
def test_verdict_needs_an_aligned_pass(
    spf: str, spf_domain: str, dkim: list[str], record: Policy | None, authenticated: bool
) -> None:
    auth = verdict("acme.example", record, spf=spf, spf_domain=spf_domain, dkim_domains=dkim)
    assert auth.verdict == ("authenticated" if authenticated else "unauthenticated")
    assert auth.reason.startswith("dmarc=pass" if authenticated else "dmarc=fail")


HEADER_PIECES = st.sampled_from(
    [
        b"From: a@b.example",
        b"Authentication-Results: m; dmarc=pass",
        b"\r\n",
        b"\n",
        b"\r",
        b" x",
        b"\t",
        b":",
        b"b",
    ]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(HEADER_PIECES, max_size=30))
def test_headers_read_from_the_header_block_alone_are_the_whole_messages(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    whole = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    values = [(k.lower(), str(v)) for k, v in whole.raw_items()]
    assert headers(raw) == Headers(
        froms=tuple(v for k, v in values if k == "from"),
        results=tuple(v for k, v in values if k == "authentication-results"),
    )
