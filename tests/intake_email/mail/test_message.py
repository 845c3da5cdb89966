"""message.py: request ids, message ids, trimmed body, thread keys, emergency keywords."""

from __future__ import annotations

from services.contracts.threading import message_id, subject_token
from services.intake_email.mail import parse
from tests.intake_email.mail.samples import SECRET, mail


def test_request_id_is_stable_per_message_and_sender() -> None:
    raw = mail("From: a@example.com\nSubject: hi\nMessage-ID: <x1@example.com>")
    again = mail("From: a@example.com\nSubject: hi (resent)\nMessage-ID: <x1@example.com>")
    other = mail("From: b@example.com\nSubject: hi\nMessage-ID: <x1@example.com>")
    first = parse(raw, secret=SECRET)
    assert first.request_id.startswith("em-") and len(first.request_id) == 35
    assert parse(again, secret=SECRET).request_id == first.request_id
    assert parse(other, secret=SECRET).request_id != first.request_id


def test_missing_message_id_is_synthesized_from_the_raw_bytes() -> None:
    raw = mail("From: a@example.com\nSubject: no id")
    parsed = parse(raw, secret=SECRET)
    assert parsed.message_id.endswith("@frontdesk.invalid>")
    assert parse(raw, secret=SECRET).message_id == parsed.message_id


def test_body_is_trimmed_while_full_text_keeps_everything() -> None:
    parsed = parse(mail("From: a@b.c\nSubject: x", "New text\n\n> old quote\n"), secret=SECRET)
    assert parsed.body == "New text"
    assert "old quote" in parsed.full_text


def test_thread_keys_signed_forged_and_our_message_ids() -> None:
    ours = message_id("SR-7", "abc", "frontdesk.test", SECRET)
    signed = parse(
        mail(
            f"From: a@b.c\nSubject: Re: {subject_token('SR-7', SECRET)}\n"
            f"In-Reply-To: {ours}\nReferences: <z@x> {ours}"
        ),
        secret=SECRET,
    )
    assert (signed.ticket_token, signed.token_signed, signed.token_forged) == ("SR-7", True, False)
    assert signed.references_ours and signed.in_reply_to == (ours,) and signed.references == ("<z@x>", ours)
    forged = parse(mail("From: a@b.c\nSubject: Re: [SR-7-00000000]"), secret=SECRET)
    assert (forged.token_signed, forged.token_forged) == (False, True)
    assert not parse(mail(f"From: a@b.c\nIn-Reply-To: {ours}"), secret=b"other").references_ours


def test_emergency_keywords_in_subject() -> None:
    parsed = parse(mail("From: a@b.c\nSubject: OUTAGE - email not working"), secret=SECRET)
    assert parsed.priority_hint == "emergency"
    assert parsed.hints == ("keyword:outage", "keyword:not working")
    assert parse(mail("From: a@b.c\nSubject: Download link"), secret=SECRET).priority_hint == "normal"
