"""Sign-in state: a signed session cookie, CSRF tokens bound to it, and the login throttle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from datetime import datetime, timedelta

import msgspec
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "fd_console"
LOGIN_COOKIE = "fd_console_login"  # CSRF nonce for the sign-in form, before there is a session


class Session(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    role: str
    nonce: str  # per sign-in: the CSRF token derives from it, so a new sign-in rotates it


class Signer:
    """Cookies are signed (not encrypted): they hold only the user name, role and a nonce."""

    def __init__(self, secret: str, max_age: timedelta) -> None:
        self.secret = secret.encode()
        self.max_age = int(max_age.total_seconds())
        self._sessions = URLSafeTimedSerializer(secret, salt="fd-console-session")
        self._login = URLSafeTimedSerializer(secret, salt="fd-console-login")

    def issue(self, user: str, role: str) -> str:
        return self._sessions.dumps({"u": user, "r": role, "n": secrets.token_urlsafe(16)})

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user, role, nonce = data.get("u"), data.get("r"), data.get("n")
        if not (isinstance(user, str) and isinstance(role, str) and isinstance(nonce, str)):
            return None
        return Session(user=user, role=role, nonce=nonce)

    def csrf(self, nonce: str) -> str:
        return hmac.new(self.secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(nonce), token or "")

    def login_nonce(self) -> str:
        return self._login.dumps(secrets.token_urlsafe(16))

    def login_nonce_ok(self, cookie: str | None) -> str | None:
        """The nonce inside a valid sign-in cookie (an hour at most), else None."""
        if not cookie or len(cookie) > 1024:
            return None
        try:
            value = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


class Throttle:
    """At most `limit` failed sign-ins per key (user name, client address) in a sliding window."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        seen = self._failures.get(key, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        return seen

    def retry_after(self, keys: list[str], now: datetime) -> int:
        """Seconds until a sign-in may be tried again for these keys; 0 when allowed now."""
        wait = 0.0
        for key in keys:
            seen = self._recent(key, now)
            if len(seen) >= self.limit:
                wait = max(wait, (seen[0] + self.window - now).total_seconds())
        return int(wait) + (1 if wait else 0)

    def failed(self, keys: list[str], now: datetime) -> None:
        if len(self._failures) >= self.max_keys:
            # Bounded memory under a spray of names: forget the keys whose failures have all aged out.
            for key in [k for k, v in self._failures.items() if not v or now - v[-1] >= self.window]:
                del self._failures[key]
        for key in keys:
            seen = self._recent(key, now)
            seen.append(now)
            self._failures[key] = seen

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
