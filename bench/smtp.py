"""SMTP intake against the bare aiosmtpd sink, in alternating rounds; `python -m bench.smtp` runs only this.

Each round sends the same fresh message mix to both, one after the other, and the order flips every
round: on a shared 2-core machine a burst of someone else's work then lands on either side, and the
median of the per-round ratios is what we report.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from pathlib import Path
from typing import Any

from bench import load, stack
from services.common.natsserver import free_port

SMTP_MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "300"))
SMTP_CONCURRENCY = int(os.environ.get("BENCH_SMTP_CONCURRENCY", "8"))
SMTP_ROUNDS = int(os.environ.get("BENCH_SMTP_ROUNDS", "3"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc/<pid>/stat, clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_smtp(nats_url: str, logs: Path, nats_pid: int | None = None) -> dict[str, Any]:
    """`nats_pid` lets the result split CPU per message between the intake, nats-server and the load."""
    bare_port, real_port = free_port(), free_port()
    bare = stack.baseline("smtp", bare_port, logs)
    real = stack.service(
        "intake_email", stack.service_env(nats_url, FRONTDESK_SMTP_PORT=str(real_port)), logs
    )
    ports = {"bare": bare_port, "intake": real_port}
    rates: dict[str, list[float]] = {"bare": [], "intake": []}
    failures = {"bare": 0, "intake": 0}
    ratios: list[float] = []
    latencies: list[float] = []
    # CPU milliseconds per message, by process: where the time goes on each side (the profile).
    cpu: dict[str, dict[str, list[float]]] = {"bare": {}, "intake": {}}
    servers = {"bare": bare, "intake": real}
    try:
        bare.wait_port(bare_port)
        real.wait_port(real_port)
        warm_up = load.message_mix(20)
        await load.smtp_load(bare_port, warm_up, SMTP_CONCURRENCY)
        await load.smtp_load(real_port, warm_up, SMTP_CONCURRENCY)
        for round_no in range(SMTP_ROUNDS):
            # Fresh Message-IDs every round: the intake must see new mail, not resends it deduplicates.
            messages = load.message_mix(SMTP_MESSAGES)
            seconds: dict[str, float] = {}
            for side in ("bare", "intake") if round_no % 2 == 0 else ("intake", "bare"):
                pids = {"server": servers[side].pid, "load": os.getpid()}
                if nats_pid is not None:
                    pids["nats"] = nats_pid
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                took, lat, failed = await load.smtp_load(ports[side], messages, SMTP_CONCURRENCY)
                for name, pid in pids.items():
                    used = (cpu_seconds(pid) - before[name]) * 1000 / len(messages)
                    cpu[side].setdefault(name, []).append(used)
                seconds[side] = took
                rates[side].append(len(messages) / took)
                failures[side] += failed
                if side == "intake":
                    latencies.extend(lat)
            ratios.append(seconds["bare"] / seconds["intake"])
        rss = real.peak_rss_mb()
    finally:
        bare.stop()
        real.stop()
    return {
        "messages": SMTP_MESSAGES,
        "concurrency": SMTP_CONCURRENCY,
        "rounds": SMTP_ROUNDS,
        "bare_msgs_per_s": round(statistics.median(rates["bare"]), 1),
        "intake_msgs_per_s": round(statistics.median(rates["intake"]), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "intake_p50_ms": round(load.percentile(latencies, 50) * 1000, 1),
        "intake_p99_ms": round(load.percentile(latencies, 99) * 1000, 1),
        "failures": failures,
        "cpu_ms_per_msg": {
            side: {name: round(statistics.median(values), 2) for name, values in by.items()}
            for side, by in cpu.items()
        },
        "peak_rss_mb": round(rss, 1),
        "goal": ">= 0.8",
    }


async def main() -> None:
    with stack.run() as bench:
        result = await bench_smtp(bench.nats.url, bench.logs, bench.nats_pid)
    print(json.dumps({"smtp_intake": result}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
