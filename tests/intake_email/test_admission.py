"""admission.py: recipient acceptance (no open relay) and the per-IP rate window."""

from __future__ import annotations

from services.intake_email.admission import RateWindow, is_support_recipient


def test_only_support_addresses_and_domains_are_accepted() -> None:
    addresses, domains = ("support@frontdesk.test",), ("help.test",)
    assert is_support_recipient("<Support@Frontdesk.test>", addresses, domains)
    assert is_support_recipient("anyone@help.test", addresses, domains)
    assert not is_support_recipient("victim@elsewhere.org", addresses, domains)
    assert not is_support_recipient("anyone@sub.help.test", addresses, domains)
    assert not is_support_recipient("support", addresses, domains)


def test_rate_window_slides() -> None:
    window = RateWindow(2)
    assert window.allow("1.2.3.4", 0.0) and window.allow("1.2.3.4", 1.0)
    assert not window.allow("1.2.3.4", 2.0)
    assert window.allow("5.6.7.8", 2.0)
    assert window.allow("1.2.3.4", 60.5)
