"""Sandbox configuration: defaults, env prefix, shared Twilio credentials."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Secret
from services.sandbox.config import load_config


def test_defaults_match_the_dev_stack() -> None:
    cfg = load_config({})
    assert (cfg.host, cfg.port, cfg.smtp_port) == ("127.0.0.1", 8025, 2526)
    assert cfg.signed_base == "http://127.0.0.1:8080"
    assert cfg.auth_token == Secret("sandbox-auth-token") and "sandbox-auth-token" not in repr(cfg)


def test_shared_twilio_credentials_fill_in_and_sandbox_prefix_wins() -> None:
    cfg = load_config(
        {
            "FRONTDESK_TWILIO_ACCOUNT_SID": "AC1",
            "FRONTDESK_TWILIO_AUTH_TOKEN": "shared",
            "FRONTDESK_SANDBOX_AUTH_TOKEN": "own",
            "FRONTDESK_SANDBOX_PUBLIC_BASE": "https://x.example/",
        }
    )
    assert cfg.account_sid == "AC1" and cfg.auth_token.reveal() == "own"
    assert cfg.signed_base == "https://x.example"


def test_bad_port_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_SANDBOX_PORT"):
        load_config({"FRONTDESK_SANDBOX_PORT": "eighty"})
