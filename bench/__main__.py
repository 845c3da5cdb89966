"""Run every benchmark, print a table and write bench/results.json.

Load generators: an aiosmtplib loop (SMTP) and an httpx loop (webhooks), both in this process,
against services running as their own processes on loopback. Bounded: a few minutes in all.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import console, endtoend, load, smtp, stack
from services.common.natsserver import free_port
from services.common.process import ROOT
from services.policy.decide import decide
from services.policy.load import load_policy

RESULTS = Path(__file__).resolve().parent / "results.json"
WEBHOOKS = int(os.environ.get("BENCH_WEBHOOKS", "800"))
WEBHOOK_CONCURRENCY = int(os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "16"))
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "20000"))


async def bench_smtp(nats_url: str, logs: Path, nats_pid: int | None = None) -> dict[str, Any]:
    # Alternating rounds against the bare sink live in bench/smtp.py (`python -m bench.smtp` runs only them).
    return await smtp.bench_smtp(nats_url, logs, nats_pid)


async def bench_webhooks(nats_url: str, logs: Path, tmp: Path) -> dict[str, Any]:
    bare_port, real_port = free_port(), free_port()
    base = f"http://127.0.0.1:{real_port}"
    env = stack.service_env(
        nats_url,
        FRONTDESK_VOICE_PORT=str(real_port),
        FRONTDESK_VOICE_PUBLIC_URL=base,
        FRONTDESK_VOICE_SPOOL_DIR=str(tmp / "spool"),
    )
    bare = stack.baseline("http", bare_port, logs)
    real = stack.service("intake_voice", env, logs)
    try:
        bare.wait_port(bare_port)
        real.wait_port(real_port)
        bare_base = f"http://127.0.0.1:{bare_port}"
        await load.webhook_load(bare_base, "bench-token", 50, WEBHOOK_CONCURRENCY)
        await load.webhook_load(base, "bench-token", 50, WEBHOOK_CONCURRENCY)
        bare_s, bare_lat, bare_fail = await load.webhook_load(
            bare_base, "bench-token", WEBHOOKS, WEBHOOK_CONCURRENCY
        )
        real_s, real_lat, real_fail = await load.webhook_load(
            base, "bench-token", WEBHOOKS, WEBHOOK_CONCURRENCY
        )
        rss = real.peak_rss_mb()
    finally:
        bare.stop()
        real.stop()
    bare_rate, real_rate = WEBHOOKS / bare_s, WEBHOOKS / real_s
    return {
        "requests": WEBHOOKS,
        "concurrency": WEBHOOK_CONCURRENCY,
        "bare_req_per_s": round(bare_rate, 1),
        "voice_req_per_s": round(real_rate, 1),
        "ratio": round(real_rate / bare_rate, 3),
        "bare_p50_ms": round(load.percentile(bare_lat, 50) * 1000, 1),
        "bare_p99_ms": round(load.percentile(bare_lat, 99) * 1000, 1),
        "voice_p50_ms": round(load.percentile(real_lat, 50) * 1000, 1),
        "voice_p99_ms": round(load.percentile(real_lat, 99) * 1000, 1),
        "failures": {"bare": bare_fail, "voice": real_fail},
        "peak_rss_mb": round(rss, 1),
        "goal": ">= 0.8",
    }


def bench_policy() -> dict[str, Any]:
    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    senders = [c.email for client in policy.clients for c in client.contacts if c.email] + [
        "stranger@else.example"
    ]
    start_at = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    t0 = time.perf_counter()
    for i in range(DECISIONS):
        at = start_at.replace(hour=(i * 7) % 24, minute=i % 60)
        decide(policy, email=senders[i % len(senders)], phone=None, at=at, emergency=i % 5 == 0)
    seconds = time.perf_counter() - t0
    return {"decisions": DECISIONS, "decisions_per_s": round(DECISIONS / seconds, 1)}


def table(results: dict[str, Any]) -> str:
    rows = ["| benchmark | result |", "|---|---|"]
    for name, value in results.items():
        if isinstance(value, dict):
            rows.append(f"| {name} | " + ", ".join(f"{k}={v}" for k, v in value.items()) + " |")
    return "\n".join(rows)


USAGE = """usage: python -m bench [all|router|e2e|smtp|console]

  all     every benchmark (default), written to bench/results.json: policy, SMTP, voice webhooks,
          end to end, router through NATS
  router  only the router through NATS, with the router as the only service on the bus
          (BENCH_ROUTER_REQUESTS requests, default 500)
  e2e     only the whole stack at a fixed offered rate (BENCH_E2E_RATE/s for BENCH_E2E_SECONDS)
  smtp    only SMTP intake against the bare sink (BENCH_SMTP_ROUNDS alternating rounds)
  console the console's budgets: projection rate, Now page and 90-day report over 100,000 events
  A single benchmark's results are printed, not written.
"""


async def only(mode: str) -> None:
    with stack.run() as bench:
        if mode == "router":
            results = {"router_through_nats": await endtoend.bench_router(bench.nats.url, bench.logs)}
        elif mode == "console":
            results = await console.bench_console(bench.nats.url, bench.tmp)
        elif mode == "e2e":
            results = await endtoend.bench_stack(bench.nats.url, bench.logs, bench.tmp)
        else:
            results = {"smtp_intake": await bench_smtp(bench.nats.url, bench.logs, bench.nats_pid)}
    print(table(results))


async def main() -> None:
    with stack.run() as bench:
        results: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "load_generators": "aiosmtplib loop (SMTP), httpx loop (webhooks), in the bench process",
        }
        results["policy_pure"] = bench_policy()
        results["smtp_intake"] = await bench_smtp(bench.nats.url, bench.logs, bench.nats_pid)
        results["voice_webhooks"] = await bench_webhooks(bench.nats.url, bench.logs, bench.tmp)
        results.update(await endtoend.bench_stack(bench.nats.url, bench.logs, bench.tmp))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode in ("-h", "--help") or mode not in ("all", "router", "e2e", "smtp", "console"):
        print(USAGE, end="")
        sys.exit(0 if mode in ("-h", "--help") else 2)
    asyncio.run(main() if mode == "all" else only(mode))
