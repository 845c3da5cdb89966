"""The console's settings: production refuses to start without users and strong secrets."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError
from services.console.config import load_config

STRONG = "k7Qv2Lr9Xw4Zp1Nt6Hs8Jd3Fb5Gm0YcR2uT"
# Production also refuses an anonymous bus: these tests are about the console's own settings.
BUS = {"FRONTDESK_NATS_USER": "console", "FRONTDESK_NATS_PASSWORD": "b" * 40}


def test_production_needs_a_users_file_and_strong_secrets() -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_CONSOLE_USERS: a users file is required"):
        load_config(BUS)
    with pytest.raises(ConfigError, match="FRONTDESK_CONSOLE_SESSION_SECRET: at least 32 bytes"):
        load_config(
            {**BUS, "FRONTDESK_CONSOLE_USERS": "/etc/users", "FRONTDESK_CONSOLE_SESSION_SECRET": "short"}
        )
    with pytest.raises(ConfigError, match="FRONTDESK_CONSOLE_FEED_SECRET"):
        load_config(
            {**BUS, "FRONTDESK_CONSOLE_USERS": "/etc/users", "FRONTDESK_CONSOLE_SESSION_SECRET": STRONG}
        )
    cfg = load_config(
        {
            **BUS,
            "FRONTDESK_CONSOLE_USERS": "/etc/users",
            "FRONTDESK_CONSOLE_SESSION_SECRET": STRONG,
            "FRONTDESK_CONSOLE_FEED_SECRET": STRONG[::-1],
            "FRONTDESK_CONSOLE_REPLICA": "console-b",
        }
    )
    assert (cfg.port, cfg.cookie_secure, cfg.durable) == (8090, True, "console-console-b")
    assert cfg.database.endswith("console-b.sqlite3")


def test_development_runs_without_users_over_plain_http() -> None:
    cfg = load_config({"FRONTDESK_ENV": "development", "FRONTDESK_CONSOLE_PORT": "9999"})
    assert (cfg.environment, cfg.port, cfg.cookie_secure, cfg.users) == ("development", 9999, False, "")
    with pytest.raises(ConfigError, match="FRONTDESK_CONSOLE_PORT"):
        load_config({"FRONTDESK_ENV": "development", "FRONTDESK_CONSOLE_PORT": "http"})
