"""Service and baseline processes for a benchmark run, with the environment they share."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.common.config import MAX_WORKERS, usable_cores
from services.common.natsserver import NatsServer, free_port
from services.common.process import ROOT, ChildProcess


@dataclass(frozen=True)
class Run:
    """One benchmark run's nats-server (fresh store) and its scratch and log folders."""

    nats: NatsServer
    tmp: Path
    logs: Path

    @property
    def nats_pid(self) -> int | None:
        return self.nats.process.pid if self.nats.process else None


@contextlib.contextmanager
def run() -> Iterator[Run]:
    with tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        logs.mkdir()
        nats = NatsServer(store_dir=tmp / "nats")
        nats.start()
        try:
            yield Run(nats=nats, tmp=tmp, logs=logs)
        finally:
            nats.stop()


def service(name: str, env: dict[str, str], log_dir: Path) -> ChildProcess:
    return ChildProcess.service(name, env, log_dir=log_dir)


# The services run as replicas (they share their durable consumers; the intakes have workers instead),
# and the variable naming each one's internal HTTP port: replicas on one host need one each.
REPLICA_PORTS = {"router": "FRONTDESK_ROUTER_HTTP_PORT", "notifier": "FRONTDESK_NOTIFIER_HTTP_PORT"}


def replica(name: str, label: str, env: dict[str, str], log_dir: Path) -> tuple[ChildProcess, int]:
    """One process of a replicated service (`REPLICA_PORTS`) on an HTTP port of its own, and that port."""
    # intake_voice's worker i serves its internal HTTP port + i, and consecutive free ports are often
    # adjacent: a replica taking one of those keeps that worker failing to bind and restarting.
    voice = int(env.get("FRONTDESK_VOICE_HTTP_PORT") or 0)
    workers = range(voice, voice + MAX_WORKERS) if voice else range(0)
    port = next(p for p in iter(free_port, None) if p not in workers)
    own = env | {REPLICA_PORTS[name]: str(port)}
    return ChildProcess(label, f"services.{name}", own, log=log_dir / f"{label}.log"), port


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
            # A bare benchmark server has no users: that is allowed in development only.
            "FRONTDESK_ENV": "development",
            "FRONTDESK_NATS_URL": nats_url,
            "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
            "FRONTDESK_THREAD_SECRET": "bench-secret",
            "FRONTDESK_TWILIO_AUTH_TOKEN": "bench-token",
            "FRONTDESK_TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
            "FRONTDESK_SMTP_HTTP_PORT": str(free_port()),
            "FRONTDESK_ROUTER_HTTP_PORT": str(free_port()),
            "FRONTDESK_NOTIFIER_HTTP_PORT": str(free_port()),
            "FRONTDESK_VOICE_HTTP_PORT": str(free_port()),
            # The benchmark offers far more mail per client IP than the production rate limit allows.
            "FRONTDESK_SMTP_RATE_PER_MINUTE": "1000000",
            "FRONTDESK_SMTP_MAX_SESSIONS": "1000",
            "FRONTDESK_SMTP_MAX_SESSIONS_PER_IP": "1000",
            # SMTP intake processes on the one port (the service's own default: one per core).
            "FRONTDESK_SMTP_WORKERS": os.environ.get("BENCH_SMTP_WORKERS", str(usable_cores())),
            # The load generators add the header a relay named frontdesk.test writes after DMARC passed.
            "FRONTDESK_SMTP_SENDER_AUTH": "upstream",
            "FRONTDESK_SMTP_AUTHSERV_ID": "frontdesk.test",
        }
    )
    env.update(extra)
    return env
