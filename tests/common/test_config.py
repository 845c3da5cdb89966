"""Outside development the thread secret must be strong: the services refuse to start, naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from services.common.config import MAX_WORKERS, BusConfig, ConfigError, Environment, load_service
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


class _Service(msgspec.Struct, frozen=True, kw_only=True):
    policy: str = "default.yaml"
    port: int = 1
    environment: Environment = "production"
    bus: BusConfig = BusConfig()


def test_load_service_fills_bus_environment_and_shared_settings() -> None:
    every_service = {"FRONTDESK_ENV": "development", "FRONTDESK_NATS_URL": "nats://a:1,nats://b:2"}
    own = {"FRONTDESK_X_POLICY": "own.yaml", "FRONTDESK_X_PORT": "7"}
    env = {**every_service, **own, "FRONTDESK_POLICY": "shared.yaml"}
    cfg = load_service(_Service, "FRONTDESK_X_", env, shared={"policy": "FRONTDESK_POLICY"})
    assert cfg == _Service(
        policy="shared.yaml",
        port=7,
        environment="development",
        bus=BusConfig(url=("nats://a:1", "nats://b:2")),
    )
    # An empty shared variable is unset: the service's own setting, else the default, stands.
    shared = {"policy": "FRONTDESK_POLICY"}
    fallback = load_service(_Service, "FRONTDESK_X_", {**env, "FRONTDESK_POLICY": ""}, shared=shared)
    assert fallback.policy == "own.yaml"
    assert load_service(_Service, "FRONTDESK_X_", {"FRONTDESK_ENV": "development"}).policy == "default.yaml"
    # Explicit overrides win over everything; bad values still name the variable.
    assert load_service(_Service, "FRONTDESK_X_", env, port=9).port == 9
    with pytest.raises(ConfigError, match=r"^FRONTDESK_X_PORT:"):
        load_service(_Service, "FRONTDESK_X_", {**env, "FRONTDESK_X_PORT": "seven"})


def test_load_service_refuses_an_anonymous_bus_outside_development() -> None:
    with pytest.raises(ConfigError, match=r"^FRONTDESK_NATS_USER:"):
        load_service(_Service, "FRONTDESK_X_", {})


class _Served(msgspec.Struct, frozen=True, kw_only=True):
    workers: int = 1


def test_load_service_gives_unset_or_zero_workers_one_per_usable_core() -> None:
    cores = min(len(os.sched_getaffinity(0)), MAX_WORKERS)
    assert load_service(_Served, "FRONTDESK_X_", {}).workers == cores
    assert load_service(_Served, "FRONTDESK_X_", {"FRONTDESK_X_WORKERS": " 0 "}).workers == cores
    assert load_service(_Served, "FRONTDESK_X_", {"FRONTDESK_X_WORKERS": "3"}).workers == 3
    # Only the service's own PREFIX + WORKERS counts.
    assert load_service(_Served, "FRONTDESK_X_", {"FRONTDESK_Y_WORKERS": "3"}).workers == cores
