"""sanitize and suppression: GSM-7 rewriting, control characters, bounds, auto-answer rules, rate window."""

from __future__ import annotations

from datetime import timedelta

from services.notifier import suppression
from services.wording import sanitize
from tests.notifier.ticketing import NOW


def test_gsm_rewrites_typographic_characters() -> None:
    text = sanitize.to_gsm("It\u2019s \u201cdown\u201d \u2014 call\u2026")
    assert text == 'It\'s "down" - call...'
    assert all(c in sanitize.GSM_BASIC or c in sanitize.GSM_EXTENSION for c in text)


def test_gsm_keeps_its_own_accents_and_folds_others() -> None:
    assert sanitize.to_gsm("café Müller") == "café Müller"  # é and ü are in GSM-7
    assert sanitize.to_gsm("Łódź señor") == "Lodz señor"
    assert sanitize.to_gsm("中文") == "??"
    assert sanitize.to_gsm("naïve") == "naive"
    assert sanitize.to_gsm("ok 👍") == "ok "


def test_control_and_bidi_characters_are_removed() -> None:
    assert sanitize.strip_controls("a\x00b\x07c\u202ed\u200be") == "abcde"
    assert sanitize.strip_controls("a\r\nb\rc") == "a\nb\nc"
    assert sanitize.header("Subject\r\nBcc: evil@example.com") == "Subject Bcc: evil@example.com"


def test_sms_is_bounded_in_septets() -> None:
    body = sanitize.sms("x" * 1000)
    assert len(body) == sanitize.SMS_MAX
    assert body.endswith("...")
    braces = sanitize.sms("{" * 300, limit=100)
    assert sanitize.septets(braces) <= 100
    assert sanitize.sms("a\n\n\n  b   c") == "a\nb c"


def test_one_line_truncates_with_marker() -> None:
    assert sanitize.one_line("  a\n b\tc  ", 20) == "a b c"
    assert sanitize.one_line("abcdefghij", 8) == "abcde..."


def test_role_addresses_and_automatic_mail_are_never_answered() -> None:
    for address in (
        "MAILER-DAEMON@example.com",
        "postmaster@x.org",
        "no-reply@x.io",
        "noreply@x.io",
        "bounces+abc=x.com@list.example",
    ):
        assert not suppression.may_auto_answer(address), address
    assert suppression.may_auto_answer("dana@acme.example")
    assert suppression.may_auto_answer(None)
    assert not suppression.may_auto_answer("dana@acme.example", nature="bounce")
    assert not suppression.may_auto_answer("dana@acme.example", nature="auto_reply")
    assert not suppression.may_auto_answer("dana@acme.example", auto_submitted="auto-replied")
    assert suppression.may_auto_answer("dana@acme.example", auto_submitted="no")


def test_rate_window_allows_ten_per_ten_minutes_sliding() -> None:
    window = suppression.RateWindow()
    for i in range(10):
        ok, window = suppression.admit(window, NOW + timedelta(seconds=i))
        assert ok
    ok, refused = suppression.admit(window, NOW + timedelta(minutes=5))
    assert not ok
    assert len(refused.sent) == 10  # a refusal is not recorded
    ok, window = suppression.admit(window, NOW + timedelta(minutes=10))
    assert ok  # the first one (at NOW) has left the window
    assert len(window.sent) == 10
