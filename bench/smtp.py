"""SMTP intake against the bare aiosmtpd sink, driven by Postfix's smtp-source (`python -m bench smtp`).

Each round sends the same load to both, one after the other, and the order flips every round: on a
shared 2-core machine a burst of someone else's work then lands on either side, and the median of the
per-round ratios is what we report. smtp-source aborts on the first 4xx/5xx reply, so a finished run
is also the proof of zero tempfails.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import stack, tools
from bench.proc import cpu_seconds, tree_peak_rss_mb
from services.common.natsserver import free_port

SMTP_MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "3000"))
SMTP_SESSIONS = int(os.environ.get("BENCH_SMTP_SESSIONS", "20"))
SMTP_LENGTH = int(os.environ.get("BENCH_SMTP_LENGTH", "2048"))
SMTP_ROUNDS = int(os.environ.get("BENCH_SMTP_ROUNDS", "3"))
SENDER = "jane@acme.example"
RECIPIENT = "support@frontdesk.test"


class LoadFailed(RuntimeError):
    """smtp-source stopped early: a refusal or a tempfail, which the benchmark must not hide."""


def smtp_source_run(tool: tools.Tool, port: int, messages: int) -> tuple[float, float]:
    """One smtp-source run; returns (wall seconds, CPU seconds of smtp-source itself)."""
    argv = tool.argv(
        "-s", str(SMTP_SESSIONS), "-m", str(messages), "-l", str(SMTP_LENGTH),
        "-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}",
    )  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=tool.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise LoadFailed(f"smtp-source exited {proc.returncode}: {stderr.strip()[-300:]}")
    return took, usage.ru_utime + usage.ru_stime


def wait_workers(env: dict[str, str], timeout: float = 30.0) -> None:
    """The primary listens first; wait until its /readyz counts every worker on the port."""
    want = int(env["FRONTDESK_SMTP_WORKERS"])
    url = f"http://127.0.0.1:{env['FRONTDESK_SMTP_HTTP_PORT']}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).json().get("workers") == want:
                return
        time.sleep(0.1)
    raise TimeoutError(f"intake_email: fewer than {want} workers listening after {timeout} s")


def bench_smtp(nats_url: str, logs: Path, nats_pid: int | None = None, **env: str) -> dict[str, Any]:
    """`nats_pid` lets the result split CPU per message between the intake, nats-server and the load."""
    tool = tools.smtp_source()
    bare_port, real_port = free_port(), free_port()
    bare = stack.baseline("smtp", bare_port, logs)
    real_env = stack.service_env(nats_url, FRONTDESK_SMTP_PORT=str(real_port), **env)
    real = stack.service("intake_email", real_env, logs)
    ports = {"bare": bare_port, "intake": real_port}
    servers = {"bare": bare, "intake": real}
    rates: dict[str, list[float]] = {"bare": [], "intake": []}
    ratios: list[float] = []
    # CPU milliseconds per message, by process: where the time goes on each side (the profile).
    cpu: dict[str, dict[str, list[float]]] = {"bare": {}, "intake": {}}
    try:
        bare.wait_port(bare_port)
        real.wait_port(real_port)
        wait_workers(real_env)
        for side in ("bare", "intake"):
            smtp_source_run(tool, ports[side], 200)  # warm-up: imports, JIT-free caches, streams
        for round_no in range(SMTP_ROUNDS):
            seconds: dict[str, float] = {}
            for side in ("bare", "intake") if round_no % 2 == 0 else ("intake", "bare"):
                pids = {"server": servers[side].pid}
                if nats_pid is not None:
                    pids["nats"] = nats_pid
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                took, load_cpu = smtp_source_run(tool, ports[side], SMTP_MESSAGES)
                for name, pid in pids.items():
                    used = (cpu_seconds(pid) - before[name]) * 1000 / SMTP_MESSAGES
                    cpu[side].setdefault(name, []).append(used)
                cpu[side].setdefault("load", []).append(load_cpu * 1000 / SMTP_MESSAGES)
                seconds[side] = took
                rates[side].append(SMTP_MESSAGES / took)
            ratios.append(seconds["bare"] / seconds["intake"])
        rss = tree_peak_rss_mb(real.pid)
    finally:
        bare.stop()
        real.stop()
    return {
        "load": f"smtp-source -s {SMTP_SESSIONS} -m {SMTP_MESSAGES} -l {SMTP_LENGTH}",
        "rounds": SMTP_ROUNDS,
        "intake_workers": int(real_env["FRONTDESK_SMTP_WORKERS"]),
        "bare_msgs_per_s": round(statistics.median(rates["bare"]), 1),
        "intake_msgs_per_s": round(statistics.median(rates["intake"]), 1),
        "intake_range": [round(min(rates["intake"]), 1), round(max(rates["intake"]), 1)],
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "cpu_ms_per_msg": {
            side: {name: round(statistics.median(values), 2) for name, values in by.items()}
            for side, by in cpu.items()
        },
        "peak_rss_mb": round(rss, 1),
        "goal": ">= 1.0",
    }
