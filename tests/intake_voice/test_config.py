"""Configuration: defaults, env names, and refusing to start without the Twilio auth token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.intake_voice.config import load_config


def test_refuses_to_start_without_auth_token() -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_TWILIO_AUTH_TOKEN"):
        load_config({})


def test_loads_env() -> None:
    cfg = load_config(
        {
            "FRONTDESK_TWILIO_AUTH_TOKEN": "s3cret",
            "FRONTDESK_VOICE_PORT": "9090",
            "FRONTDESK_VOICE_TRUST_FORWARDED": "true",
            "FRONTDESK_POLICY": "/etc/fd/policy.yaml",
            "FRONTDESK_NATS_URL": "nats://a:4222,nats://b:4222",
        }
    )
    assert cfg.port == 9090 and cfg.trust_forwarded and cfg.publish_timeout == 2.0
    assert cfg.policy == "/etc/fd/policy.yaml"
    assert cfg.bus.url == ("nats://a:4222", "nats://b:4222")
    assert cfg.auth_token.reveal() == "s3cret" and "s3cret" not in repr(cfg)
    assert (cfg.host, cfg.public_url, cfg.spool_dir) == (
        "127.0.0.1",
        "http://127.0.0.1:8080",
        ".data/voice-spool",
    )


def test_a_voice_template_that_cannot_render_refuses_the_start(tmp_path: Path) -> None:
    (tmp_path / "voice").mkdir()
    greeting = tmp_path / "voice" / "greeting.txt"
    greeting.write_text("Welcome to {{ desk }}.{% if not in_hours %} We are closed.{% endif %}")
    env = {"FRONTDESK_TWILIO_AUTH_TOKEN": "s3cret", "FRONTDESK_TEMPLATES": str(tmp_path)}
    assert load_config(env).templates == str(tmp_path)
    greeting.write_text("Hello {{ caller }}")  # the greeting has `name`, not `caller`
    with pytest.raises(ConfigError, match=re.escape(f"FRONTDESK_TEMPLATES: {greeting}: ")):
        load_config(env)
