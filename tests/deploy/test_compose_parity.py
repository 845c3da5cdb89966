"""compose.yaml cannot drift from the code: each service's own command and environment (from the
compose file and deploy/.env.example, hostnames mapped to loopback) starts against a local
nats-server and its compose health check URL answers."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.natsserver import NatsServer
from services.console.users import set_user
from tests.conftest import AuthServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
APP_SERVICES = ("router", "notifier", "intake_email", "intake_voice", "console")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def loopback(value: str, nats: NatsServer) -> str:
    value = value.replace("nats://nats:4222", nats.url).replace("0.0.0.0", "127.0.0.1")
    return value.replace("/etc/frontdesk/policy.yaml", str(DEPLOY / "policy.example.yaml"))


def health_url(service: dict[str, Any]) -> str:
    test = " ".join(service["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:\d+/\w+", test)
    assert match, f"no health URL in {test}"
    return match.group()


def test_compose_shape() -> None:
    services = compose()["services"]
    assert set(APP_SERVICES) | {"nats"} <= set(services)
    assert "sandbox" in yaml.safe_load((DEPLOY / "compose.dev.yaml").read_text())["services"]
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["restart"] == "unless-stopped"
        assert svc["depends_on"]["nats"]["condition"] == "service_healthy"
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        assert any(v.endswith(":/etc/frontdesk/policy.yaml:ro") for v in svc["volumes"])
        assert "healthcheck" in svc
    assert [p.rsplit(":", 1)[1] for p in services["intake_email"]["ports"]] == ["2525"]
    assert [p.rsplit(":", 1)[1] for p in services["intake_voice"]["ports"]] == ["8080"]
    assert "healthz" in " ".join(services["nats"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_starts_from_compose(name: str, nats_server: AuthServer, tmp_path: Path) -> None:
    if not (ROOT / "services" / name / "app.py").exists():
        pytest.skip(f"{name} not built")
    service = compose()["services"][name]
    env = {**os.environ, **env_example()}
    env.update({k: loopback(str(v), nats_server) for k, v in service.get("environment", {}).items()})
    env["FRONTDESK_VOICE_SPOOL_DIR"] = str(tmp_path / "spool")
    # Secrets are the deployment's: the test server's password file for the service's own bus user, and
    # a strong thread secret and Twilio token (outside development .env.example's placeholders are refused).
    env.update(nats_server.service_env(env.get("FRONTDESK_NATS_USER") or name))
    env["FRONTDESK_THREAD_SECRET"] = secrets.token_urlsafe(32)
    env["FRONTDESK_TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    # The console's: a users file (compose mounts it as a secret), its keys and its read model's folder.
    users = tmp_path / "console_users"
    set_user(str(users), "ops", "dispatcher", secrets.token_urlsafe(16))
    env["FRONTDESK_CONSOLE_USERS"] = str(users)
    env["FRONTDESK_CONSOLE_SESSION_SECRET"] = secrets.token_urlsafe(32)
    env["FRONTDESK_CONSOLE_FEED_SECRET"] = secrets.token_urlsafe(32)
    env["FRONTDESK_CONSOLE_DATA_DIR"] = str(tmp_path / "console")
    nats_server.create_topology()
    command = [sys.executable if part == "python" else part for part in service["command"]]
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = health_url(service)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=1) as rsp:
                    status = rsp.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, f"{name} never answered {url}: {log.read_text()[-2000:]}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
