"""Run every benchmark, print a table and write bench/results.json.

Load generators written in C, faster than what they measure: Postfix's smtp-source (SMTP) and wrk
(webhooks, pre-signed requests); the end-to-end driver is open loop. Services run as their own
processes on loopback. Bounded: a few minutes in all.
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

from bench import console, endtoend, replicas, smtp, stack, webhooks
from services.common.process import ROOT
from services.policy.decide import decide
from services.policy.load import load_policy

RESULTS = Path(__file__).resolve().parent / "results.json"
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "20000"))
E2E_TWILIO = os.environ.get("BENCH_E2E_TWILIO", "sink,sandbox").split(",")
# Routers and notifiers in the end-to-end stack: one each, then two each sharing their durables.
E2E_REPLICAS = [int(n) for n in os.environ.get("BENCH_E2E_REPLICAS", "1,2").split(",") if n]


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


USAGE = """usage: python -m bench [all|router|notifier|e2e|smtp|webhooks|console]

  all     every benchmark (default), written to bench/results.json: policy, SMTP, voice webhooks,
          end to end (sink, then the sandbox at the goal rate), router and notifier replicas
  router  the router alone through NATS, 1 then 2 replicas on one durable (BENCH_ROUTER_REQUESTS,
          default 2000, BENCH_REPLICA_ROUNDS interleaved rounds, default 2)
  notifier the notifier alone, fed DispatchTicket commands, 1 then 2 replicas, SMS counted at the sink
          (BENCH_NOTIFIER_DISPATCHES, default 1000)
  e2e     the whole stack against the counting sink at BENCH_E2E_RATE/s then BENCH_E2E_SWEEP rates
          for BENCH_E2E_SECONDS each, with BENCH_E2E_REPLICAS routers and notifiers (default 1, then 2),
          then against the sandbox at BENCH_E2E_RATE (its CPU share)
  smtp    only SMTP intake against the bare sink, smtp-source (BENCH_SMTP_ROUNDS alternating rounds)
  webhooks only the Twilio webhooks against bare FastAPI, wrk (BENCH_WEBHOOK_ROUNDS rounds)
  console the console's budgets: projection rate, Now page and 90-day report over 100,000 events
  A single benchmark's results are printed, not written.
"""


async def end_to_end() -> dict[str, Any]:
    """The pipeline against the counting sink (the figure), then against the sandbox at the goal rate
    (what our fake Twilio costs), each on a fresh bus: the intake benchmarks' backlog is not timed."""
    results: dict[str, Any] = {}
    for copies in E2E_REPLICAS if "sink" in E2E_TWILIO else ():
        with stack.run() as bench:
            name = "end_to_end" if copies == 1 else f"end_to_end_{copies}_replicas"
            results[name] = await endtoend.bench_stack(
                bench.nats.url, bench.logs, bench.tmp, bench.nats_pid, twilio="sink", replicas=copies
            )
    if "sandbox" in E2E_TWILIO:
        with stack.run() as bench:
            results["end_to_end_sandbox"] = await endtoend.bench_stack(
                bench.nats.url,
                bench.logs,
                bench.tmp,
                bench.nats_pid,
                twilio="sandbox",
                rates=(endtoend.RATE,),
            )
    return results


async def only(mode: str) -> None:
    if mode in ("router", "notifier"):
        results = {f"{mode}_replicas": await replicas.bench_replicas(mode)}
        print(table(results))
        return
    if mode == "e2e":
        print(table(await end_to_end()))
        return
    with stack.run() as bench:
        if mode == "console":
            results = await console.bench_console(bench.nats.url, bench.tmp)
        elif mode == "webhooks":
            voice = webhooks.bench_webhooks(bench.nats.url, bench.logs, bench.tmp, bench.nats_pid)
            results = {"voice_webhooks": voice}
        else:
            results = {"smtp_intake": smtp.bench_smtp(bench.nats.url, bench.logs, bench.nats_pid)}
    print(table(results))


async def main() -> None:
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "load_generators": "smtp-source (SMTP), wrk (webhooks), open-loop driver (end to end)",
    }
    results["policy_pure"] = bench_policy()
    with stack.run() as bench:
        results["smtp_intake"] = smtp.bench_smtp(bench.nats.url, bench.logs, bench.nats_pid)
        voice = webhooks.bench_webhooks(bench.nats.url, bench.logs, bench.tmp, bench.nats_pid)
        results["voice_webhooks"] = voice
    results.update(await end_to_end())
    for service in ("router", "notifier"):
        results[f"{service}_replicas"] = await replicas.bench_replicas(service)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode in ("-h", "--help") or mode not in (
        "all",
        "router",
        "notifier",
        "e2e",
        "smtp",
        "webhooks",
        "console",
    ):
        print(USAGE, end="")
        sys.exit(0 if mode in ("-h", "--help") else 2)
    asyncio.run(main() if mode == "all" else only(mode))
