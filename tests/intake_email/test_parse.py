"""parse.py: decoding, trimming, sender fallbacks, thread keys and nature classification, no I/O."""

from __future__ import annotations

import base64
import email
import email.policy
import re

import pytest

from services.contracts.threading import message_id, subject_token
from services.intake_email.parse import (
    _ATTRIBUTION_END,
    _LONGEST_VERB,
    _ends_with_attribution,
    _Lookahead,
    _plain_header_text,
    charset_codec,
    decode_bytes,
    html_to_text,
    parse,
    trim_reply,
)
from tests.conftest import corpus

SECRET = b"unit-secret"


def mail(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip() + "\n\n" + body).encode("utf-8")


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


def test_rfc2047_subject_and_rfc2231_filename() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\nSubject: =?iso-8859-1?q?St=F6rung?=\n"
        b"Message-ID: <a@b>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
        b"--XX\nContent-Type: text/plain; charset=utf-8\n\nHallo\n"
        b"--XX\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERg==\n--XX--\n"
    )
    parsed = parse(raw, secret=SECRET)
    assert parsed.subject == "Störung"
    assert (parsed.sender_email, parsed.sender_name) == ("j@example.de", "Jürgen")
    (att,) = parsed.attachments
    assert (att.filename, att.content_type, att.data) == ("Rechnung März.pdf", "application/pdf", b"%PDF")


def test_charset_aliases_and_mislabeled_bytes_never_crash() -> None:
    assert charset_codec("ks_c_5601-1987") == "cp949"
    assert charset_codec("gb2312") == "gb18030"
    assert charset_codec("x-no-such-charset") == "utf-8"
    assert decode_bytes("안녕".encode("cp949"), "ks_c_5601-1987") == "안녕"
    assert decode_bytes("こんにちは".encode("iso-2022-jp"), "iso-2022-jp") == "こんにちは"
    assert decode_bytes("Grüße".encode(), "us-ascii") == "Grüße"
    assert decode_bytes(b"caf\xe9", "us-ascii") == "café"
    raw = b"From: a@b.c\nSubject: x\nContent-Type: text/plain; charset=windows-1252\n\nPrice \x80 5\n"
    assert parse(raw, secret=SECRET).full_text == "Price € 5"


def test_html_only_mail_becomes_readable_text() -> None:
    assert (
        html_to_text("<style>p{}</style><p>Hi&nbsp;there</p><div>Line<br>two</div>")
        == "Hi there\n\nLine\ntwo"
    )
    raw = mail(
        "From: a@b.c\nSubject: x\nContent-Type: text/html; charset=utf-8", "<p>The <b>printer</b> is down</p>"
    )
    assert parse(raw, secret=SECRET).full_text == "The printer is down"


def test_trimmer_drops_quotes_signatures_and_mobile_signoffs() -> None:
    text = "It broke again.\n\nSent from my iPhone\n\nOn Mon, 1 Jan 2026, Bob <b@x> wrote:\n> earlier"
    assert trim_reply(text) == "It broke again."
    assert trim_reply("Fixed?\n-- \nAlice\nACME") == "Fixed?"
    outlook = "Yes.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: Q"
    assert trim_reply(outlook) == "Yes."
    headers = "Thanks\n\nFrom: Bob <b@x>\nSent: Monday, 1 Jan\nTo: help@x\nSubject: Q\n\nold"
    assert trim_reply(headers) == "Thanks"


def test_body_is_trimmed_while_full_text_keeps_everything() -> None:
    parsed = parse(mail("From: a@b.c\nSubject: x", "New text\n\n> old quote\n"), secret=SECRET)
    assert parsed.body == "New text"
    assert "old quote" in parsed.full_text


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


def test_nature_classification() -> None:
    def nature(headers: str) -> str:
        return parse(mail(headers), secret=SECRET).nature

    assert nature("From: a@b.c\nSubject: Printer broken") == "request"
    assert nature("From: a@b.c\nSubject: Printer\nAuto-Submitted: no") == "request"
    assert nature("From: a@b.c\nSubject: Printer\nAuto-Submitted: auto-generated") == "auto_reply"
    assert nature("From: a@b.c\nSubject: News\nPrecedence: bulk") == "auto_reply"
    assert nature("From: a@b.c\nSubject: Re: x\nX-Autoreply: yes") == "auto_reply"
    assert nature("From: a@b.c\nSubject: Re: x\nReturn-Path: <>") == "auto_reply"
    assert nature("From: a@b.c\nSubject: Out of Office: back Monday") == "out_of_office"
    assert nature("From: a@b.c\nSubject: Vacation\nAuto-Submitted: auto-replied") == "out_of_office"
    assert nature("From: MAILER-DAEMON@mx.example.com\nSubject: Hi") == "bounce"
    assert nature("From: a@b.c\nSubject: Undeliverable: printer") == "bounce"
    report = (
        "From: a@b.c\nSubject: x\nContent-Type: multipart/report; report-type=delivery-status; boundary=B"
    )
    assert nature(report) == "bounce"


def test_emergency_keywords_in_subject() -> None:
    parsed = parse(mail("From: a@b.c\nSubject: OUTAGE - email not working"), secret=SECRET)
    assert parsed.priority_hint == "emergency"
    assert parsed.hints == ("keyword:outage", "keyword:not working")
    assert parse(mail("From: a@b.c\nSubject: Download link"), secret=SECRET).priority_hint == "normal"


def test_bounce_threads_to_the_message_we_sent() -> None:
    from services.contracts.threading import message_id, verify_message_id

    ours = message_id("SR-1042", "abc123", "frontdesk.test", b"secret")
    dsn = (
        "From: MAILER-DAEMON@mx.example\r\nTo: support@frontdesk.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; jane@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@frontdesk.test\r\n"
        f"Message-ID: {ours}\r\nSubject: Re: Printer [SR-1042-00000000]\r\n\r\n--B--\r\n"
    ).encode()
    parsed = parse(dsn, secret=b"secret")
    assert parsed.nature == "bounce"
    assert ours in parsed.references
    assert parsed.references_ours
    assert verify_message_id(ours, b"secret") == "SR-1042"


def test_undeclared_8bit_header_bytes_try_utf8_then_the_message_charsets_then_legacy_ones() -> None:
    def subject(raw_subject: bytes, body_charset: str) -> str:
        raw = (
            b"From: a@b.c\r\nSubject: " + raw_subject + b"\r\n"
            b"Content-Type: text/plain; charset=" + body_charset.encode() + b"\r\n\r\nhi\r\n"
        )
        return parse(raw, secret=SECRET).subject

    assert subject("Grüße".encode(), "iso-8859-1") == "Grüße"  # valid UTF-8 wins over any label
    # Shift_JIS in a mail whose parts say ISO-2022-JP (which rejects 8-bit): the legacy list finds it.
    assert subject("ツール".encode("shift_jis"), "iso-2022-jp") == "ツール"
    # Latin-1 would also "decode" as Shift_JIS nonsense; the part's declared charset is tried first.
    assert subject("Bérénice".encode("latin-1"), "iso-8859-1") == "Bérénice"
    # ...and with no hint at all (a UTF-8 body), Western bytes are the likelier reading.
    assert subject("Bérénice".encode("latin-1"), "utf-8") == "Bérénice"
    assert subject("Réunion à 9h".encode("cp1252"), "us-ascii") == "Réunion à 9h"
    # A Japanese hint anywhere in the message puts the East Asian codecs first again.
    assert subject("ツール".encode("shift_jis"), "shift_jis") == "ツール"


def test_mislabeled_and_split_encoded_words() -> None:
    sjis = base64.b64encode("ツール EXAMPLE".encode("shift_jis")).decode()
    raw = f"From: =?ISO-2022-JP?B?{sjis}?= <bar@example.org>\nSubject: x\n\nhi\n".encode()
    parsed = parse(raw, secret=SECRET)
    assert (parsed.sender_name, parsed.sender_email) == ("ツール EXAMPLE", "bar@example.org")
    # One ISO-2022-JP character cut in half by the sender's encoder: the two words decode together.
    data = "Undeliverable: ニャーン".encode("iso-2022-jp")
    cut = data.index(b"%c") + 1  # between the two bytes of ャ
    first, second = (base64.b64encode(chunk).decode() for chunk in (data[:cut], data[cut:]))
    raw = f"From: a@b.c\nSubject: =?iso-2022-jp?B?{first}?=\n =?iso-2022-jp?B?{second}?=\n\nhi\n".encode()
    assert parse(raw, secret=SECRET).subject == "Undeliverable: ニャーン"


def test_delivery_report_and_returned_message_are_attachments() -> None:
    ours = message_id("SR-9", "abc", "frontdesk.test", SECRET)
    dsn = (
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; jane@acme.example\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: support@frontdesk.test\r\nMessage-ID: {ours}\r\nSubject: Printer [SR-9]\r\n\r\n"
        "Your printer ticket.\r\n--B--\r\n"
    ).encode()
    parsed = parse(dsn, secret=SECRET)
    assert parsed.nature == "bounce" and parsed.references_ours and ours in parsed.references
    report, returned = parsed.attachments
    assert (report.filename, report.content_type) == ("Delivery report.txt", "message/delivery-status")
    assert b"Final-Recipient: rfc822; jane@acme.example" in report.data
    assert (returned.filename, returned.content_type) == ("Printer [SR-9].eml", "message/rfc822")
    assert (
        returned.data.startswith(b"From: support@frontdesk.test") and b"Your printer ticket." in returned.data
    )
    # The returned message is ours, not the bounce's text.
    assert parsed.full_text == "Delivery failed."


def test_unnamed_parts_are_named_by_type_and_every_name_is_unique() -> None:
    def part(headers: str, body: str = "eA==") -> str:
        return f"--B\nContent-Transfer-Encoding: base64\n{headers}\n\n{body}\n"

    raw = (
        "From: a@b.c\nSubject: x\nContent-Type: multipart/mixed; boundary=B\n\n"
        + part("Content-Type: text/plain", "aGk=")
        + part("Content-Type: application/octet-stream")
        + part("Content-Type: application/octet-stream")
        + part("Content-Type: application/pdf; name=scan.pdf")
        + part("Content-Type: application/pdf\nContent-Disposition: attachment; filename=scan.pdf")
        + part("Content-Type: image/png")
        + part("Content-Type: image/png\nContent-ID: <logo.png@01D2>")
        + "--B--\n"
    ).encode()
    parsed = parse(raw, secret=SECRET)
    names = [a.filename for a in parsed.attachments]
    assert names == ["file", "file1", "scan.pdf", "scan1.pdf", "image.png", "logo.png"]
    assert parsed.full_text == "hi"
    assert parsed.attachments[-1].inline


def test_multipart_without_boundary_lines() -> None:
    def parsed(body: str) -> tuple[str, list[tuple[str, str]]]:
        raw = f"From: a@b.c\nSubject: x\nContent-Type: multipart/mixed; boundary=NOPE\n\n{body}".encode()
        result = parse(raw, secret=SECRET)
        return result.full_text, [(a.filename, a.content_type) for a in result.attachments]

    assert parsed("The printer is on fire.\n") == ("The printer is on fire.", [])
    assert parsed("") == ("", [])
    # Part headers under a boundary we cannot see: not a body, so kept whole as an attachment.
    assert parsed("--OTHER\nContent-Type: text/plain\n\nhi\n--OTHER--\n") == (
        "",
        [("file", "multipart/mixed")],
    )


def test_sender_name_and_address_without_brackets() -> None:
    def sender(value: str) -> tuple[str | None, str | None]:
        parsed = parse(mail(f"From: {value}\nSubject: x"), secret=SECRET)
        return parsed.sender_email, parsed.sender_name

    assert sender("Test test@example.com") == ("test@example.com", "Test")
    assert sender("John Q. Public jq@example.com") == ("jq@example.com", "John Q. Public")
    # Inside brackets the spaces belong to the address: keep the one valid (quoted) spelling of it.
    assert sender('"x" <power quadrant@example.com>') == ('"power quadrant"@example.com', "x")


def test_vendor_bounce_and_vacation_formats() -> None:
    def nature(headers: str, body: str = "hi") -> str:
        return parse(f"{headers}\r\n\r\n{body}\r\n".encode(), secret=SECRET).nature

    ses = '{"notificationType":"Bounce","bounce":{"bounceType":"Permanent"}}'
    sns = "From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification Message"
    assert nature(sns, ses) == "bounce"
    # The same JSON escaped inside an SNS envelope; and a delivery notice, which is machine mail.
    assert (
        nature(sns, '{"Type": "Notification", "Message": "{\\"notificationType\\":\\"Bounce\\"}"}')
        == "bounce"
    )
    assert nature(sns, '{"notificationType":"Delivery","delivery":{}}') == "auto_reply"
    assert nature("From: post_master@vtext.example.com\r\nSubject: Re: Test") == "bounce"
    apple = "From: k@apple.example.com\r\nSubject: Auto reply: Nyaan\r\nX-Apple-Action: VACATION"
    assert nature(apple) == "out_of_office"
    jmrp = (
        "From: staff@hotmail.com\r\nSubject: complaint about message from 192.0.2.1\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n'
        "From: us@frontdesk.test\r\nSubject: x\r\n\r\nbody\r\n--B--"
    )
    assert parse(jmrp.encode(), secret=SECRET).nature == "bounce"
    # A person complaining is a request, whatever their words.
    assert nature("From: jane@acme.example\r\nSubject: Complaint about message from your tech") == "request"


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
