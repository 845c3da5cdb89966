"""admission.py: recipient acceptance (no open relay), the per-IP rate window, limits shared by workers."""

from __future__ import annotations

from services.intake_email.admission import RateWindow, is_support_recipient, share


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


def test_a_limit_shared_by_workers_never_adds_up_to_more_than_the_limit() -> None:
    assert [share(20, n) for n in (1, 2, 3, 4)] == [20, 10, 6, 5]
    assert all(share(limit, n) * n <= limit for limit in range(1, 200) for n in range(1, limit + 1))
    # Below one each, every worker still admits one (a limit of 1 with 2 workers admits up to 2).
    assert share(1, 2) == 1
