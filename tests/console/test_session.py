"""Session cookies, CSRF tokens and the sign-in throttle."""

from __future__ import annotations

from datetime import timedelta

from services.console.session import Signer, Throttle
from tests.console.conftest import NOW


def test_sessions_are_signed_and_expire() -> None:
    signer = Signer("a" * 40, timedelta(hours=1))
    cookie = signer.issue("dina", "dispatcher")
    session = signer.read(cookie)
    assert session is not None and (session.user, session.role) == ("dina", "dispatcher")
    # Change one character inside the signature (the last one may carry only padding bits).
    at = cookie.rindex(".") + 5
    tampered = cookie[:at] + ("A" if cookie[at] != "A" else "B") + cookie[at + 1 :]
    assert signer.read(tampered) is None
    assert Signer("b" * 40, timedelta(hours=1)).read(cookie) is None
    assert Signer("a" * 40, timedelta(seconds=-1)).read(cookie) is None
    assert signer.read("x" * 5000) is None


def test_csrf_tokens_are_bound_to_the_session() -> None:
    signer = Signer("a" * 40, timedelta(hours=1))
    one, two = (
        signer.read(signer.issue("dina", "dispatcher")),
        signer.read(signer.issue("dina", "dispatcher")),
    )
    assert one is not None and two is not None
    assert signer.csrf_ok(one.nonce, signer.csrf(one.nonce))
    assert not signer.csrf_ok(one.nonce, signer.csrf(two.nonce))
    assert not signer.csrf_ok(one.nonce, None)


def test_throttle_blocks_after_the_limit_and_forgets_after_the_window() -> None:
    throttle = Throttle(3, timedelta(minutes=5))
    keys = ["user:dina", "addr:10.0.0.1"]
    for i in range(3):
        assert throttle.retry_after(keys, NOW) == 0
        throttle.failed(keys, NOW + timedelta(seconds=i))
    assert throttle.retry_after(keys, NOW + timedelta(seconds=10)) == 291
    # Another user from the same address is blocked too; the same user elsewhere as well.
    assert throttle.retry_after(["user:vera", "addr:10.0.0.1"], NOW) > 0
    assert throttle.retry_after(["user:dina", "addr:10.0.0.2"], NOW) > 0
    assert throttle.retry_after(keys, NOW + timedelta(minutes=5, seconds=3)) == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = Throttle(3, timedelta(minutes=5), max_keys=100)
    for i in range(1000):
        throttle.failed([f"user:u{i}"], NOW + timedelta(minutes=10 * i))
    assert len(throttle._failures) <= 101
