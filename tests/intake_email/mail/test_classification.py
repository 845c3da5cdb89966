"""classification.py: bounces, out-of-office and automatic replies, bounce threading."""

from __future__ import annotations

from services.contracts.threading import message_id
from services.intake_email.mail import parse
from tests.intake_email.mail.samples import SECRET, mail


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


def test_bounce_threads_to_the_message_we_sent() -> None:
    from services.contracts.threading import verify_message_id

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
