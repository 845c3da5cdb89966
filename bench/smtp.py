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
from services.common.config import usable_cores
from services.common.natsserver import free_port
from services.common.process import ChildProcess

SMTP_MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "3000"))
SMTP_SESSIONS = int(os.environ.get("BENCH_SMTP_SESSIONS", "20"))
SMTP_LENGTH = int(os.environ.get("BENCH_SMTP_LENGTH", "2048"))
SMTP_ROUNDS = int(os.environ.get("BENCH_SMTP_ROUNDS", "3"))
# Intake worker processes to measure, each against the same bare sink: the first is the headline (the
# service's default, one per core), then one process, to show whether more processes pay on this host.
_CORES = usable_cores()
_COUNTS = f"{_CORES},1" if _CORES > 1 else "1"
WORKER_COUNTS = [int(n) for n in os.environ.get("BENCH_SMTP_WORKER_COUNTS", _COUNTS).split(",")]
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
    """`nats_pid` lets the result split CPU per message between the intake, nats-server and the load.

    The intake runs once per worker count in WORKER_COUNTS, all of them and the bare sink interleaved
    round by round; the headline figures are the first count's (the service's default).
    """
    tool = tools.smtp_source()
    bare_port = free_port()
    sides: dict[str, tuple[ChildProcess, int]] = {
        "bare": (stack.baseline("smtp", bare_port, logs), bare_port)
    }
    envs = {}
    for count in WORKER_COUNTS:
        port, folder = free_port(), logs / f"intake-{count}w"
        folder.mkdir(exist_ok=True)
        envs[count] = stack.service_env(
            nats_url, FRONTDESK_SMTP_PORT=str(port), **{**env, "FRONTDESK_SMTP_WORKERS": str(count)}
        )
        sides[f"{count}w"] = (stack.service("intake_email", envs[count], folder), port)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    ratios: dict[str, list[float]] = {side: [] for side in sides if side != "bare"}
    # CPU milliseconds per message, by process: where the time goes on each side (the profile).
    cpu: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
    try:
        for server, port in sides.values():
            server.wait_port(port)
        for count in WORKER_COUNTS:
            wait_workers(envs[count])
        for _, port in sides.values():
            smtp_source_run(tool, port, 200)  # warm-up: imports, JIT-free caches, streams
        for round_no in range(SMTP_ROUNDS):
            seconds: dict[str, float] = {}
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            for side in order:
                server, port = sides[side]
                pids = {"server": server.pid}
                if nats_pid is not None:
                    pids["nats"] = nats_pid
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                took, load_cpu = smtp_source_run(tool, port, SMTP_MESSAGES)
                for name, pid in pids.items():
                    used = (cpu_seconds(pid) - before[name]) * 1000 / SMTP_MESSAGES
                    cpu[side].setdefault(name, []).append(used)
                cpu[side].setdefault("load", []).append(load_cpu * 1000 / SMTP_MESSAGES)
                seconds[side] = took
                rates[side].append(SMTP_MESSAGES / took)
            for side, measured in ratios.items():
                measured.append(seconds["bare"] / seconds[side])
        rss = {side: tree_peak_rss_mb(server.pid) for side, (server, _) in sides.items() if side != "bare"}
    finally:
        for server, _ in sides.values():
            server.stop()

    def median_cpu(side: str) -> dict[str, float]:
        return {name: round(statistics.median(values), 2) for name, values in cpu[side].items()}

    head = f"{WORKER_COUNTS[0]}w"
    return {
        "load": f"smtp-source -s {SMTP_SESSIONS} -m {SMTP_MESSAGES} -l {SMTP_LENGTH}",
        "rounds": SMTP_ROUNDS,
        "intake_workers": WORKER_COUNTS[0],
        "bare_msgs_per_s": round(statistics.median(rates["bare"]), 1),
        "intake_msgs_per_s": round(statistics.median(rates[head]), 1),
        "intake_range": [round(min(rates[head]), 1), round(max(rates[head]), 1)],
        "ratio": round(statistics.median(ratios[head]), 3),
        "ratios": [round(r, 3) for r in ratios[head]],
        "cpu_ms_per_msg": {"bare": median_cpu("bare"), "intake": median_cpu(head)},
        "peak_rss_mb": round(rss[head], 1),
        # Every worker count measured, to choose the default from (FRONTDESK_SMTP_WORKERS).
        "by_workers": {
            side: {
                "msgs_per_s": round(statistics.median(rates[side]), 1),
                "ratio": round(statistics.median(ratios[side]), 3),
                "cpu_ms_per_msg": median_cpu(side),
                "peak_rss_mb": round(rss[side], 1),
            }
            for side in ratios
        },
        "goal": ">= 1.0",
    }
