"""desk: the timeline says why a message opened no ticket."""

from __future__ import annotations

from services.wording.desk import received_text


def test_requests_read_plainly_and_ignored_mail_says_why() -> None:
    assert received_text("email", "jane@acme.example", "Printer jams", "request") == (
        "email from jane@acme.example: Printer jams"
    )
    assert received_text("email", "jane@acme.example", "I am away", "out_of_office") == (
        "email from jane@acme.example, no ticket: an out-of-office reply. I am away"
    )
    assert "automatic reply" in received_text("email", "x@y.example", "Thanks", "auto_reply")
    assert "bounce" in received_text("email", "mailer-daemon@y.example", "Undeliverable", "bounce")
