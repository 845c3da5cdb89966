"""mime.py: body text from plain and HTML parts, attachments and their names."""

from __future__ import annotations

from services.contracts.threading import message_id
from services.intake_email.mail import parse
from services.intake_email.mail.mime import html_to_text
from tests.intake_email.mail.samples import ENCODED, SECRET, mail


def test_rfc2047_subject_and_rfc2231_filename() -> None:
    parsed = parse(ENCODED, secret=SECRET)
    assert parsed.subject == "Störung"
    assert (parsed.sender_email, parsed.sender_name) == ("j@example.de", "Jürgen")
    (att,) = parsed.attachments
    assert (att.filename, att.content_type, att.data) == ("Rechnung März.pdf", "application/pdf", b"%PDF")


def test_html_only_mail_becomes_readable_text() -> None:
    assert (
        html_to_text("<style>p{}</style><p>Hi&nbsp;there</p><div>Line<br>two</div>")
        == "Hi there\n\nLine\ntwo"
    )
    raw = mail(
        "From: a@b.c\nSubject: x\nContent-Type: text/html; charset=utf-8", "<p>The <b>printer</b> is down</p>"
    )
    assert parse(raw, secret=SECRET).full_text == "The printer is down"


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
