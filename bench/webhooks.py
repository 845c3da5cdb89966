"""Twilio webhooks (intake_voice) against bare FastAPI+uvicorn, driven by wrk with pre-signed requests.

Every request wrk sends is a distinct, correctly signed Twilio webhook (its own MessageSid or CallSid),
written into a Lua script beforehand: signing inside the load loop would measure the signer, and
repeating one id would measure the de-duplication shortcut instead of the work.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench import stack, tools
from bench.proc import cpu_seconds, tree_peak_rss_mb
from services.common.natsserver import free_port

TOKEN = "bench-token"
SECONDS = int(os.environ.get("BENCH_WEBHOOK_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("BENCH_WEBHOOK_CONNECTIONS", "32"))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "3"))
# More distinct requests than the fastest side can send in one run, so no id repeats within a run.
DISTINCT = int(os.environ.get("BENCH_WEBHOOK_DISTINCT", "60000"))
PATHS = ("/twilio/sms", "/twilio/voice")
# The scaled-out side: intake_voice with this many worker processes (default one per core).
WORKERS = int(os.environ.get("BENCH_WEBHOOK_WORKERS", "0")) or os.cpu_count() or 1

_LUA = """
-- Requests are read from a data file (one per line: path, signature, body, tab-separated):
-- tens of thousands of literals in the script itself exceed Lua's constant limit.
local requests = {}
local tid, threads, i, n = 0, 1, 0, 0
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  threads = tonumber(args[1])
  -- wrk.format adds the Host header only once wrk.host is known, i.e. here and not at load time.
  for line in io.lines(args[2]) do
    local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, body)
  end
  n = #requests
end
function request()
  local k = (tid + i * threads) % n + 1
  i = i + 1
  return requests[k]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


class Script:
    """wrk's Lua driver and the data file of pre-signed requests it replays."""

    def __init__(self, folder: Path, url_base: str, kind: str, offset: int) -> None:
        self.lua = folder / "wrk.lua"
        self.data = folder / f"wrk-{offset}.tsv"
        self.lua.write_text(_LUA)
        validator = RequestValidator(TOKEN)
        lines = []
        for i in range(offset, offset + DISTINCT):
            params = _params(kind, i)
            signature = validator.compute_signature(url_base + kind, params)
            lines.append(f"{kind}\t{signature}\t{urlencode(params)}")
        self.data.write_text("\n".join(lines) + "\n")


def _params(kind: str, i: int) -> dict[str, str]:
    caller = f"+1312555{i % 10000:04d}"
    if kind == "/twilio/sms":
        return {
            "MessageSid": f"SM{i:032x}",
            "AccountSid": "AC00000000000000000000000000000000",
            "From": caller,
            "To": "+13125550199",
            "Body": f"Printer down on floor {i % 5}",
            "NumMedia": "0",
        }
    return {
        "CallSid": f"CA{i:032x}",
        "AccountSid": "AC00000000000000000000000000000000",
        "From": caller,
        "To": "+13125550199",
        "CallStatus": "ringing",
    }


def wrk_run(tool: tools.Tool, base: str, script: Script, threads: int = 2) -> dict[str, Any]:
    argv = tool.argv(
        "-t", str(threads), "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--timeout", "10s",
        "-s", str(script.lua), base, "--", str(threads), str(script.data),
    )  # fmt: skip
    done = subprocess.run(argv, env=tool.env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result ({done.returncode}): {done.stderr.strip()[-300:]}")


def bench_webhooks(nats_url: str, logs: Path, tmp: Path, nats_pid: int | None = None) -> dict[str, Any]:
    """bare FastAPI, intake_voice as one process (the per-process ratio) and with WORKERS processes."""
    tool = tools.wrk()
    ports = {side: free_port() for side in SIDES}
    bases = {side: f"http://127.0.0.1:{port}" for side, port in ports.items()}
    servers = {"bare": stack.baseline("http", ports["bare"], logs)}
    for side, workers in (("voice", 1), ("voice_workers", WORKERS)):
        env = stack.service_env(
            nats_url,
            FRONTDESK_VOICE_PORT=str(ports[side]),
            FRONTDESK_VOICE_PUBLIC_URL=bases[side],
            FRONTDESK_VOICE_SPOOL_DIR=str(tmp / f"spool-{side}"),
            FRONTDESK_VOICE_WORKERS=str(workers),
        )
        servers[side] = stack.service("intake_voice", env, logs)
    results: dict[str, Any] = {}
    try:
        for side, server in servers.items():
            server.wait_port(ports[side])
        for path in PATHS:
            per: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
            ratios: dict[str, list[float]] = {name: [] for name in RATIOS}
            for round_no in range(ROUNDS):
                rate: dict[str, float] = {}
                # Interleaved: each round starts with a different side.
                order = SIDES[round_no % len(SIDES) :] + SIDES[: round_no % len(SIDES)]
                for side in order:
                    # Fresh ids every round and side: a service must never see a repeat.
                    offset = (round_no * len(SIDES) + SIDES.index(side)) * DISTINCT
                    script = Script(tmp, bases[side], path, offset)  # signed for its URL
                    rate[side] = _measure(
                        tool, bases[side], script, pids=_pids(servers[side].pid, nats_pid), row=per[side]
                    )
                ratios["ratio"].append(rate["voice"] / rate["bare"])
                ratios["ratio_workers"].append(rate["voice_workers"] / rate["bare"])
                # The tail as a ratio per round too: on a shared machine both sides of one round saw
                # about the same neighbours, unlike medians taken over rounds apart.
                p99 = {side: per[side]["p99_ms"][-1] for side in SIDES}
                ratios["p99_ratio"].append(p99["voice"] / p99["bare"])
                ratios["p99_ratio_workers"].append(p99["voice_workers"] / p99["bare"])
            results[path] = {
                side: {k: round(statistics.median(v), 2) for k, v in row.items()}
                | {"req_per_s_range": [round(min(row["req_per_s"])), round(max(row["req_per_s"]))]}
                for side, row in per.items()
            }
            for name, values in ratios.items():
                results[path][name] = round(statistics.median(values), 3)
                results[path][name.replace("ratio", "ratios")] = [round(r, 3) for r in values]
        results["peak_rss_mb"] = round(tree_peak_rss_mb(servers["voice"].pid), 1)
        results["peak_rss_mb_workers"] = round(tree_peak_rss_mb(servers["voice_workers"].pid), 1)
    finally:
        for server in servers.values():
            server.stop()
    results["load"] = f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s, {DISTINCT} distinct pre-signed requests"
    results["workers"] = WORKERS
    results["goal"] = "ratio (one process each) >= 0.9, p99_ratio <= 2; ratio_workers > ratio; RSS <= 80 MB"
    return results


SIDES = ("bare", "voice", "voice_workers")
# Ours over bare per round: throughput (higher is better) and p99 latency (lower is better).
RATIOS = ("ratio", "ratio_workers", "p99_ratio", "p99_ratio_workers")


def _pids(server: int, nats: int | None) -> dict[str, int]:
    return {"server": server} | ({"nats": nats} if nats else {})


def _measure(
    tool: tools.Tool, base: str, script: Script, *, pids: dict[str, int], row: dict[str, list[float]]
) -> float:
    """One wrk run against one side; appends its figures to `row` and returns its req/s."""
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    out = wrk_run(tool, base, script)
    if out["non_2xx"] or out["socket_errors"]:
        raise RuntimeError(f"{base}: {out}")
    rate = float(out["requests"] / (out["duration_us"] / 1e6))
    row.setdefault("req_per_s", []).append(rate)
    row.setdefault("p50_ms", []).append(out["p50_us"] / 1000)
    row.setdefault("p99_ms", []).append(out["p99_us"] / 1000)
    for name, p in pids.items():
        row.setdefault(f"cpu_ms_{name}", []).append((cpu_seconds(p) - before[name]) * 1000 / out["requests"])
    return rate
