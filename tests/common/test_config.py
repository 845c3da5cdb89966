"""Outside development the thread secret must be strong: the services refuse to start, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.intake_email.config import load_config as load_email
from services.notifier.config import load_config as load_notifier

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
STRONG = "Zq8m1vX0c7rT4yP9kL2nB6hJ3dF5sW8e"  # 32 bytes, no placeholder word


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    password = tmp_path / "bus.password"
    password.write_text("Y" * 40)
    env = {
        "FRONTDESK_ENV": "production",
        "FRONTDESK_POLICY": str(POLICY),
        "FRONTDESK_NATS_USER": "notifier",
        "FRONTDESK_NATS_PASSWORD_FILE": str(password),
        "FRONTDESK_TWILIO_AUTH_TOKEN": "T" * 32,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.mark.parametrize("weak", ["", "short", "change-me-to-a-long-random-string"])
def test_weak_thread_secret_stops_both_services(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, weak: str
) -> None:
    monkeypatch.setenv("FRONTDESK_THREAD_SECRET", weak)
    with pytest.raises(ConfigError, match=r"^FRONTDESK_THREAD_SECRET:"):
        load_email({**production, "FRONTDESK_THREAD_SECRET": weak})
    with pytest.raises(ConfigError, match=r"^FRONTDESK_THREAD_SECRET:"):
        load_notifier()


def test_strong_thread_secret_starts_and_development_allows_a_weak_one(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_THREAD_SECRET", STRONG)
    assert load_email({**production, "FRONTDESK_THREAD_SECRET": STRONG}).thread_secret.reveal() == STRONG
    assert load_notifier().thread_secret.reveal() == STRONG
    monkeypatch.setenv("FRONTDESK_ENV", "development")
    monkeypatch.setenv("FRONTDESK_THREAD_SECRET", "dev")
    assert load_notifier().thread_secret.reveal() == "dev"
    assert load_email({"FRONTDESK_ENV": "development", "FRONTDESK_THREAD_SECRET": "dev"}).thread_secret
