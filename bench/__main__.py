"""Run every benchmark, print a table and write bench/results.json.

Load generators: an aiosmtplib loop (SMTP) and an httpx loop (webhooks), both in this process,
against services running as their own processes on loopback. Bounded: a few minutes in all.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import endtoend, load, stack
from services.common.natsserver import NatsServer, free_port
from services.policy.decide import decide
from services.policy.load import load_policy

RESULTS = Path(__file__).resolve().parent / "results.json"
SMTP_MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "300"))
SMTP_CONCURRENCY = int(os.environ.get("BENCH_SMTP_CONCURRENCY", "8"))
WEBHOOKS = int(os.environ.get("BENCH_WEBHOOKS", "800"))
WEBHOOK_CONCURRENCY = int(os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "16"))
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "20000"))


def present(name: str) -> bool:
    return (stack.ROOT / "services" / name / "app.py").exists()


async def bench_smtp(nats_url: str, logs: Path) -> dict[str, Any]:
    if not present("intake_email"):
        return {"skipped": "intake_email not built"}
    messages = load.message_mix(SMTP_MESSAGES)
    bare_port, real_port = free_port(), free_port()
    bare = stack.baseline("smtp", bare_port, logs)
    real = stack.service(
        "intake_email", stack.service_env(nats_url, FRONTDESK_SMTP_PORT=str(real_port)), logs
    )
    try:
        stack.wait_port(bare_port, bare)
        stack.wait_port(real_port, real)
        await load.smtp_load(bare_port, messages[:20], SMTP_CONCURRENCY)  # warm-up
        await load.smtp_load(real_port, messages[:20], SMTP_CONCURRENCY)
        bare_s, _, bare_fail = await load.smtp_load(bare_port, messages, SMTP_CONCURRENCY)
        real_s, real_lat, real_fail = await load.smtp_load(real_port, messages, SMTP_CONCURRENCY)
        rss = stack.peak_rss_mb(real)
    finally:
        stack.stop(bare)
        stack.stop(real)
    bare_rate, real_rate = len(messages) / bare_s, len(messages) / real_s
    return {
        "messages": len(messages),
        "concurrency": SMTP_CONCURRENCY,
        "bare_msgs_per_s": round(bare_rate, 1),
        "intake_msgs_per_s": round(real_rate, 1),
        "ratio": round(real_rate / bare_rate, 3),
        "intake_p50_ms": round(load.percentile(real_lat, 50) * 1000, 1),
        "intake_p99_ms": round(load.percentile(real_lat, 99) * 1000, 1),
        "failures": {"bare": bare_fail, "intake": real_fail},
        "peak_rss_mb": round(rss, 1),
        "goal": ">= 0.8",
    }


async def bench_webhooks(nats_url: str, logs: Path, tmp: Path) -> dict[str, Any]:
    if not present("intake_voice"):
        return {"skipped": "intake_voice not built"}
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
        stack.wait_port(bare_port, bare)
        stack.wait_port(real_port, real)
        bare_base = f"http://127.0.0.1:{bare_port}"
        await load.webhook_load(bare_base, "bench-token", 50, WEBHOOK_CONCURRENCY)
        await load.webhook_load(base, "bench-token", 50, WEBHOOK_CONCURRENCY)
        bare_s, bare_lat, bare_fail = await load.webhook_load(
            bare_base, "bench-token", WEBHOOKS, WEBHOOK_CONCURRENCY
        )
        real_s, real_lat, real_fail = await load.webhook_load(
            base, "bench-token", WEBHOOKS, WEBHOOK_CONCURRENCY
        )
        rss = stack.peak_rss_mb(real)
    finally:
        stack.stop(bare)
        stack.stop(real)
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
    policy = load_policy(stack.ROOT / "deploy" / "policy.example.yaml")
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


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        logs.mkdir()
        nats = NatsServer(store_dir=tmp / "nats")
        nats.start()
        try:
            results: dict[str, Any] = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count()},
                "load_generators": "aiosmtplib loop (SMTP), httpx loop (webhooks), in the bench process",
            }
            results["policy_pure"] = bench_policy()
            results["smtp_intake"] = await bench_smtp(nats.url, logs)
            results["voice_webhooks"] = await bench_webhooks(nats.url, logs, tmp)
            results.update(await endtoend.bench_stack(nats.url, logs, tmp))
        finally:
            nats.stop()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
