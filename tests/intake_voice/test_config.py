"""Configuration: defaults, env names, and refusing to start unsigned or with a weak token in production."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.intake_voice.config import load_config

REAL_LOOKING = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # 32 hex digits, like a Twilio auth token
# Production also refuses an anonymous bus: these tests are about the Twilio token, so give it one.
PRODUCTION_BUS = {"FRONTDESK_NATS_USER": "intake_voice", "FRONTDESK_NATS_PASSWORD": "b" * 40}


def test_refuses_to_start_without_auth_token() -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_TWILIO_AUTH_TOKEN"):
        load_config(PRODUCTION_BUS)
    with pytest.raises(ConfigError, match="FRONTDESK_TWILIO_AUTH_TOKEN"):
        load_config({"FRONTDESK_ENV": "development"})


@pytest.mark.parametrize(
    "token",
    [
        "change-me",  # deploy/.env.example's placeholder
        "sandbox-auth-token",  # the development sandbox's token
        "0f1e2d3c4b5a6978",  # too short to resist guessing
        "change-me-to-a-long-random-string-0123",  # long, but a placeholder
    ],
)
def test_weak_token_refused_outside_development(token: str) -> None:
    for env in (PRODUCTION_BUS, {**PRODUCTION_BUS, "FRONTDESK_ENV": "production"}):
        with pytest.raises(ConfigError, match="FRONTDESK_TWILIO_AUTH_TOKEN"):
            load_config({**env, "FRONTDESK_TWILIO_AUTH_TOKEN": token})
    dev = load_config({"FRONTDESK_ENV": "development", "FRONTDESK_TWILIO_AUTH_TOKEN": token})
    assert dev.environment == "development" and dev.auth_token.reveal() == token


def test_real_token_starts_in_production() -> None:
    cfg = load_config({**PRODUCTION_BUS, "FRONTDESK_TWILIO_AUTH_TOKEN": REAL_LOOKING})
    assert cfg.environment == "production" and cfg.http_port == 9104 and cfg.port == 8080


def test_loads_env() -> None:
    cfg = load_config(
        {
            **PRODUCTION_BUS,
            "FRONTDESK_TWILIO_AUTH_TOKEN": REAL_LOOKING,
            "FRONTDESK_VOICE_PORT": "9090",
            "FRONTDESK_VOICE_HTTP_PORT": "9191",
            "FRONTDESK_VOICE_TRUST_FORWARDED": "true",
            "FRONTDESK_POLICY": "/etc/fd/policy.yaml",
            "FRONTDESK_NATS_URL": "nats://a:4222,nats://b:4222",
        }
    )
    assert cfg.port == 9090 and cfg.http_port == 9191 and cfg.trust_forwarded and cfg.publish_timeout == 2.0
    assert cfg.policy == "/etc/fd/policy.yaml"
    assert cfg.bus.url == ("nats://a:4222", "nats://b:4222")
    assert cfg.auth_token.reveal() == REAL_LOOKING and REAL_LOOKING not in repr(cfg)
    assert (cfg.host, cfg.public_url, cfg.spool_dir) == (
        "127.0.0.1",
        "http://127.0.0.1:8080",
        ".data/voice-spool",
    )


def test_a_voice_template_that_cannot_render_refuses_the_start(tmp_path: Path) -> None:
    (tmp_path / "voice").mkdir()
    greeting = tmp_path / "voice" / "greeting.txt"
    greeting.write_text("Welcome to {{ desk }}.{% if not in_hours %} We are closed.{% endif %}")
    env = {
        "FRONTDESK_ENV": "development",
        "FRONTDESK_TWILIO_AUTH_TOKEN": "s3cret",
        "FRONTDESK_TEMPLATES": str(tmp_path),
    }
    assert load_config(env).templates == str(tmp_path)
    greeting.write_text("Hello {{ caller }}")  # the greeting has `name`, not `caller`
    with pytest.raises(ConfigError, match=re.escape(f"FRONTDESK_TEMPLATES: {greeting}: ")):
        load_config(env)


def test_workers_default_to_one_per_core_and_are_bounded() -> None:
    env = {"FRONTDESK_ENV": "development", "FRONTDESK_TWILIO_AUTH_TOKEN": REAL_LOOKING}
    cores = len(os.sched_getaffinity(0))
    assert load_config(env).workers == min(cores, 64) and load_config(env).worker == 0
    assert load_config({**env, "FRONTDESK_VOICE_WORKERS": "0"}).workers == min(cores, 64)
    assert load_config({**env, "FRONTDESK_VOICE_WORKERS": "3"}).workers == 3
    for bad in ("-1", "65", "many"):
        with pytest.raises(ConfigError, match="FRONTDESK_VOICE_WORKERS"):
            load_config({**env, "FRONTDESK_VOICE_WORKERS": bad})


def test_a_websocket_nats_url_is_refused_at_start() -> None:
    # The process runs without nats-py's WebSocket transport: say so at start, not at every reconnect.
    env = {"FRONTDESK_ENV": "development", "FRONTDESK_TWILIO_AUTH_TOKEN": REAL_LOOKING}
    for url in ("ws://127.0.0.1:8443", "nats://a:4222, WSS://b:443"):
        with pytest.raises(ConfigError, match="FRONTDESK_NATS_URL"):
            load_config({**env, "FRONTDESK_NATS_URL": url})
    assert load_config({**env, "FRONTDESK_NATS_URL": "tls://a:4222"}).bus.url == ("tls://a:4222",)
