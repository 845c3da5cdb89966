"""config: shared Twilio names, the thread secret and a broken policy file reported at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.notifier.config import load_config

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


def test_reads_shared_and_prefixed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_ENV", "development")
    monkeypatch.setenv("FRONTDESK_POLICY", str(POLICY))
    monkeypatch.setenv("FRONTDESK_NOTIFIER_RELAY_PORT", "2599")
    monkeypatch.setenv("FRONTDESK_TWILIO_FROM", "+13125550199")
    monkeypatch.setenv("FRONTDESK_TWILIO_AUTH_TOKEN", "tok-9f3a")
    monkeypatch.setenv("FRONTDESK_TWILIO_API_BASE", "http://127.0.0.1:8025")
    monkeypatch.setenv("FRONTDESK_THREAD_SECRET", "s3cret")
    cfg = load_config()
    assert (cfg.http_port, cfg.relay_port, cfg.mail_from) == (9103, 2599, "support@frontdesk.test")
    assert cfg.twilio.from_ == "+13125550199"
    assert cfg.twilio.api_base == "http://127.0.0.1:8025"
    assert cfg.twilio.auth_token.reveal() == "tok-9f3a" and "tok-9f3a" not in repr(cfg)
    assert cfg.thread_secret.reveal() == "s3cret"


def test_bad_port_and_missing_policy_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FRONTDESK_ENV", "development")
    monkeypatch.setenv("FRONTDESK_POLICY", str(POLICY))
    monkeypatch.setenv("FRONTDESK_NOTIFIER_RELAY_PORT", "abc")
    with pytest.raises(ConfigError, match="FRONTDESK_NOTIFIER_RELAY_PORT"):
        load_config()
    monkeypatch.delenv("FRONTDESK_NOTIFIER_RELAY_PORT")
    monkeypatch.setenv("FRONTDESK_POLICY", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="FRONTDESK_POLICY"):
        load_config()
