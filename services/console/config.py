"""Settings of the console (env prefix FRONTDESK_CONSOLE_; the policy file is FRONTDESK_POLICY)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import timedelta

import msgspec

from services.common.config import (
    BusConfig,
    ConfigError,
    Environment,
    Secret,
    load_environment,
    load_service,
    require_strong,
)


class ConsoleConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8090
    policy: str = "deploy/policy.example.yaml"
    users: str = ""  # users file (`name:role:argon2-hash` per line); required outside development
    session_secret: Secret = Secret("")  # signs session cookies and CSRF tokens
    feed_secret: Secret = Secret("")  # derives each tech's secret iCalendar URL
    data_dir: str = ".data/console"
    # Each replica keeps its own read model and durable consumer, named after it.
    replica: str = msgspec.field(default_factory=socket.gethostname)
    session_hours: float = 12.0
    cookie_secure: bool = True  # Secure cookies; `make run` (plain http on localhost) turns it off
    login_failures: int = 5  # per user name and per client address ...
    login_window: float = 300.0  # ... within this many seconds, then 429 until the window passes
    poll_seconds: float = 1.0  # how often the Now page asks for fresh rows
    environment: Environment = "production"
    bus: BusConfig = BusConfig()

    @property
    def session_max_age(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    @property
    def database(self) -> str:
        return os.path.join(self.data_dir, f"{_safe(self.replica)}.sqlite3")

    @property
    def durable(self) -> str:
        return f"console-{_safe(self.replica)}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "console"


def check(cfg: ConsoleConfig) -> None:
    """Outside development: a users file and strong secrets, or the console does not start."""
    if cfg.environment == "development":
        return
    if not cfg.users:
        raise ConfigError("FRONTDESK_CONSOLE_USERS: a users file is required outside development")
    require_strong("FRONTDESK_CONSOLE_SESSION_SECRET", cfg.session_secret, cfg.environment)
    require_strong("FRONTDESK_CONSOLE_FEED_SECRET", cfg.feed_secret, cfg.environment)


def load_config(env: Mapping[str, str] | None = None) -> ConsoleConfig:
    source = os.environ if env is None else env
    overrides: dict[str, object] = {}
    if load_environment(source) == "development" and "FRONTDESK_CONSOLE_COOKIE_SECURE" not in source:
        overrides["cookie_secure"] = False
    cfg = load_service(
        ConsoleConfig, "FRONTDESK_CONSOLE_", source, shared={"policy": "FRONTDESK_POLICY"}, **overrides
    )
    check(cfg)
    return cfg
