"""Start nats-server and service processes for a benchmark run, and read their peak memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from services.common.natsserver import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)


def service(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", f"services.{name}"], env, log_dir / f"{name}.log")


def baseline(kind: str, port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    return spawn(
        [sys.executable, "-m", "bench.baselines", kind, str(port)],
        dict(os.environ),
        log_dir / f"bare-{kind}.log",
    )


def peak_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
