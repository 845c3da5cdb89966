"""Service and baseline processes for a benchmark run, with the environment they share."""

from __future__ import annotations

import os
from pathlib import Path

from services.common.natsserver import free_port
from services.common.process import ROOT, ChildProcess


def service(name: str, env: dict[str, str], log_dir: Path) -> ChildProcess:
    return ChildProcess.service(name, env, log_dir=log_dir)


def baseline(kind: str, port: int, log_dir: Path) -> ChildProcess:
    """A bare endpoint (bench/baselines.py) that the real service is measured against."""
    return ChildProcess(
        f"bare-{kind}",
        "bench.baselines",
        os.environ,
        log=log_dir / f"bare-{kind}.log",
        args=(kind, str(port)),
    )


def service_env(nats_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FRONTDESK_NATS_URL": nats_url,
            "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
            "FRONTDESK_THREAD_SECRET": "bench-secret",
            "FRONTDESK_TWILIO_AUTH_TOKEN": "bench-token",
            "FRONTDESK_TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
            "FRONTDESK_SMTP_HTTP_PORT": str(free_port()),
            "FRONTDESK_ROUTER_HTTP_PORT": str(free_port()),
            "FRONTDESK_NOTIFIER_HTTP_PORT": str(free_port()),
            # The benchmark offers far more mail per client IP than the production rate limit allows.
            "FRONTDESK_SMTP_RATE_PER_MINUTE": "1000000",
            "FRONTDESK_SMTP_MAX_SESSIONS": "1000",
        }
    )
    env.update(extra)
    return env
