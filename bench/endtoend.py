"""End-to-end latency, open loop: intake accepted -> tech SMS at the Twilio stand-in (sink or sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from twilio.request_validator import RequestValidator

from bench import load, stack
from bench.proc import cpu_seconds, tree_peak_rss_mb
from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.natsserver import free_port
from services.common.process import ROOT, ChildProcess
from services.contracts import subjects as s
from services.policy.load import load_policy

RATE = float(os.environ.get("BENCH_E2E_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "20"))
# After the goal rate, higher rates are offered until p99 crosses SATURATED_P99 (the sustainable limit).
SWEEP = tuple(float(r) for r in os.environ.get("BENCH_E2E_SWEEP", "150,200,300").split(",") if r)
SATURATED_P99 = 1.0
DRAIN_WAIT = float(os.environ.get("BENCH_E2E_DRAIN", "20"))  # after the last send: later = lost
TOKEN = "bench-token"
SUPPORT_NUMBER = "+13125550199"
# A premium client's emergency is dispatched (in hours) or paged (after hours) at once, whatever
# the real clock says, so every request must end in a tech SMS.
EMAIL_SENDER = "jane@acme.example"
SMS_SENDER = "+13125550150"
MARKER = re.compile(r"E2EM(\d{6})")
SERVICES = ("router", "notifier", "intake_email", "intake_voice")


def _tech_phones() -> set[str]:
    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    return {tech.phone for tech in policy.techs if tech.phone}


def _email(i: int) -> bytes:
    return load.authenticated_email(
        f"Jane Roe <{EMAIL_SENDER}>",
        f"E2EM{i:06d} server down",
        f"<e2e-{i}-{uuid.uuid4().hex}@acme.example>",
        f"E2EM{i:06d} the MES server is down on the plant floor.\n",
    ).as_bytes()


async def topology(nats_url: str) -> None:
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-topology")
    try:
        await bus.ensure_topology()
    finally:
        await bus.close()


async def _backlog(bus: Bus) -> int:
    total = 0
    for stream in (s.STREAM_REQUESTS, s.STREAM_NOTIFY, s.STREAM_OUTBOX):
        for info in await bus.js.consumers_info(stream):
            total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    return total


async def _queues(nats_url: str, peaks: dict[str, int], stop: asyncio.Event) -> None:
    """The deepest each durable's queue (pending + unacked) got while `stop` is unset: where a backlog
    forms is the stage that limits the rate."""
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-queues")
    try:
        while not stop.is_set():
            for stream in (s.STREAM_REQUESTS, s.STREAM_NOTIFY, s.STREAM_REPLIES, s.STREAM_OUTBOX):
                try:
                    infos = await bus.js.consumers_info(stream)
                except Exception:  # a slow answer on a busy machine: skip this sample
                    continue
                for info in infos:
                    depth = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
                    name = str(info.name)
                    peaks[name] = max(peaks.get(name, 0), depth)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await bus.close()


async def _drain(nats_url: str, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until every consumer has caught up: the earlier benchmarks leave requests on the bus,
    and measuring while the router works through them would time the backlog, not the path."""
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-drain")
    try:
        t0 = time.monotonic()
        first = left = await _backlog(bus)
        while left and time.monotonic() - t0 < timeout:
            await asyncio.sleep(0.25)
            left = await _backlog(bus)
        return {"backlog": first, "drain_s": round(time.monotonic() - t0, 1), "left": left}
    finally:
        await bus.close()


async def _offer(
    smtp_port: int, voice_base: str, rate: float, accepted: dict[int, float], failures: list[str]
) -> int:
    """Offer `rate` requests/s for SECONDS, alternating email and SMS; returns how many were sent.

    Open loop: request i is due at start + i/rate whatever happened to the earlier ones, and its
    latency counts from that scheduled instant, so a backlog at the intake cannot hide (no
    coordinated omission).
    """
    total = int(rate * SECONDS)
    validator = RequestValidator(TOKEN)
    url = f"{voice_base}/twilio/sms"
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> None:
            try:
                if i % 2 == 0:
                    await aiosmtplib.send(
                        _email(i),
                        sender=EMAIL_SENDER,
                        recipients=["support@frontdesk.test"],
                        hostname="127.0.0.1",
                        port=smtp_port,
                        timeout=30,
                    )
                else:
                    params = {
                        "MessageSid": f"SM{uuid.uuid4().hex}",
                        "AccountSid": "AC00000000000000000000000000000000",
                        "From": SMS_SENDER,
                        "To": SUPPORT_NUMBER,
                        "Body": f"E2EM{i:06d} urgent: server down",
                        "NumMedia": "0",
                    }
                    headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
                    rsp = await client.post(url, data=params, headers=headers)
                    if rsp.status_code != 200:
                        failures.append(f"sms {rsp.status_code}")
                        return
                accepted[i] = scheduled[i]
            except (aiosmtplib.SMTPException, httpx.HTTPError) as exc:
                failures.append(repr(exc))

        start, wall = time.perf_counter(), time.time()
        scheduled = [wall + i / rate for i in range(total)]
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return total


async def _delivered(sandbox: str, techs: set[str], accepted: dict[int, float]) -> dict[int, float]:
    """Poll the sandbox ledger until every accepted marker has a tech SMS, or DRAIN_WAIT passes."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + DRAIN_WAIT
    async with httpx.AsyncClient(base_url=sandbox, timeout=30) as client:
        while time.monotonic() < deadline:
            for item in (await client.get("/api/messages")).json():
                if item["to"] not in techs:
                    continue
                found = MARKER.search(item["body"])
                if found is not None:
                    i = int(found.group(1))
                    at = datetime.fromisoformat(item["time"]).timestamp()
                    seen[i] = min(at, seen.get(i, at))
            if all(i in seen for i in accepted):
                break
            await asyncio.sleep(0.5)
    return seen


def _ms(values: list[float], p: float) -> float:
    return round(load.percentile(values, p) * 1000, 1)


def twilio_side(kind: str, nats_url: str, tmp: Path, logs: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The environment and the processes standing in for Twilio and the SMTP relay.

    "sink": bench/sink.py (counts SMS, a fraction of a ms each) and the bare aiosmtpd relay, so the
    figure measures our services; it posts no status callbacks, so none are asked for. "sandbox": the
    full fake Twilio (SMS ledger, signed status callbacks through intake_voice, SMTP sink), as in
    `make run`: its CPU is reported on its own, the share production would not pay.
    """
    twilio_port, relay_port, smtp_port, voice_port = (free_port() for _ in range(4))
    voice = f"http://127.0.0.1:{voice_port}"
    extra = {
        "FRONTDESK_TWILIO_API_BASE": f"http://127.0.0.1:{twilio_port}",
        "FRONTDESK_TWILIO_AUTH_TOKEN": TOKEN,
        "FRONTDESK_TWILIO_FROM": SUPPORT_NUMBER,
        "FRONTDESK_SANDBOX_PHONE_NUMBER": SUPPORT_NUMBER,
        "FRONTDESK_NOTIFIER_RELAY_HOST": "127.0.0.1",
        "FRONTDESK_NOTIFIER_RELAY_PORT": str(relay_port),
        "FRONTDESK_SMTP_PORT": str(smtp_port),
        "FRONTDESK_VOICE_PORT": str(voice_port),
        "FRONTDESK_VOICE_PUBLIC_URL": voice,
        "FRONTDESK_VOICE_SPOOL_DIR": str(tmp / f"e2e-spool-{kind}"),
    }
    if kind == "sandbox":
        extra |= {
            "FRONTDESK_SANDBOX_PORT": str(twilio_port),
            "FRONTDESK_SANDBOX_SMTP_PORT": str(relay_port),
            "FRONTDESK_SANDBOX_WEBHOOK_BASE": voice,
            # As in production: Twilio reports each SMS's final status back through intake_voice.
            "FRONTDESK_NOTIFIER_STATUS_CALLBACK": f"{voice}/twilio/sms/status",
        }
    env = stack.service_env(nats_url, **extra)
    if kind == "sink":
        env.pop("FRONTDESK_NOTIFIER_STATUS_CALLBACK", None)  # the caller's own, if any
    ports = {"twilio": twilio_port, "relay": relay_port, "smtp": smtp_port, "voice": voice_port}
    return env, ports


def start_twilio(
    kind: str, env: dict[str, str], ports: dict[str, int], logs: Path
) -> dict[str, ChildProcess]:
    if kind == "sandbox":
        sandbox = stack.service("sandbox", env, logs)
        return {"sandbox": sandbox}
    sink = ChildProcess("sink", "bench.sink", env, log=logs / "sink.log", args=(str(ports["twilio"]),))
    return {"sink": sink, "relay": stack.baseline("smtp", ports["relay"], logs)}


async def bench_stack(
    nats_url: str,
    logs: Path,
    tmp: Path,
    nats_pid: int | None = None,
    *,
    twilio: str = "sink",
    rates: tuple[float, ...] = (RATE, *SWEEP),
    replicas: int = 1,
) -> dict[str, Any]:
    """Run the whole stack once against `twilio` ("sink" or "sandbox") with `replicas` routers and
    notifiers; offer each of `rates` in turn (stopping once p99 crosses SATURATED_P99 or one is lost)."""
    env, ports = twilio_side(twilio, nats_url, tmp, logs)
    await topology(nats_url)
    procs: dict[str, ChildProcess] = {}
    try:
        procs |= start_twilio(twilio, env, ports, logs)
        for name in SERVICES:
            if name not in stack.REPLICA_PORTS:
                procs[name] = stack.service(name, env, logs)
                continue
            for i in range(replicas):
                label = name if i == 0 else f"{name}#{i + 1}"
                procs[label], _ = stack.replica(name, label, env, logs)
        procs[twilio].wait_port(ports["twilio"])  # start_twilio names it "sink" or "sandbox"
        procs["sandbox" if twilio == "sandbox" else "relay"].wait_port(ports["relay"])
        procs["intake_email"].wait_port(ports["smtp"])
        procs["intake_voice"].wait_port(ports["voice"])
        await asyncio.sleep(1.0)  # router and notifier have no port: give their consumers a moment
        drained = await _drain(nats_url)
        pids = {name: p.pid for name, p in procs.items()} | ({"nats": nats_pid} if nats_pid else {})
        ledger = f"http://127.0.0.1:{ports['twilio']}"
        stages: list[dict[str, Any]] = []
        peaks: list[dict[str, float]] = []
        for rate in rates:
            await _drain(nats_url)
            voice = f"http://127.0.0.1:{ports['voice']}"
            step = await _end_to_end(nats_url, ledger, ports["smtp"], voice, rate=rate, pids=pids)
            stages.append(step)
            # High-water marks after each stage: the memory goal is at the goal rate, before the sweep.
            peaks.append({name: round(tree_peak_rss_mb(p.pid), 1) for name, p in procs.items()})
            if step["p99_ms"] > SATURATED_P99 * 1000 or step["lost"]:
                break
        result = stages[0] | {"twilio": twilio, "replicas": replicas, "before": drained}
        result["peak_rss_mb"] = peaks[0]
        result["peak_rss_mb_after_sweep"] = peaks[-1]
        keys = ["offered_per_s", "p50_ms", "p99_ms", "delivered", "lost", "refused", "cpu_ms_per_request"]
        keys.append("peak_queue_by_durable")
        result["sweep"] = [{k: step[k] for k in keys} for step in stages[1:]]
        held = [step["offered_per_s"] for step in stages if step["p99_ms"] <= SATURATED_P99 * 1000]
        result["highest_rate_p99_under_1s"] = max(held, default=None)
    finally:
        for name in reversed(list(procs)):
            procs[name].stop()
    return result


async def _end_to_end(
    nats_url: str, sandbox: str, smtp_port: int, voice: str, *, rate: float, pids: dict[str, int]
) -> dict[str, Any]:
    techs = _tech_phones()
    accepted: dict[int, float] = {}
    failures: list[str] = []
    # Every stage numbers its requests from 0: the SMS of an earlier stage must not match this one's.
    async with httpx.AsyncClient(base_url=sandbox, timeout=30) as client:
        (await client.delete("/api/messages")).raise_for_status()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    peaks: dict[str, int] = {}
    watched = asyncio.Event()
    watch = asyncio.create_task(_queues(nats_url, peaks, watched))
    try:
        sent = await _offer(smtp_port, voice, rate, accepted, failures)
        seen = await _delivered(sandbox, techs, accepted)
    finally:
        watched.set()
        await watch
    # CPU per request by process, the sandbox (our fake Twilio) shown on its own: its share is the
    # part of the figure that production (real Twilio) would not pay.
    cpu = {
        name: round((cpu_seconds(pid) - before[name]) * 1000 / max(sent, 1), 2) for name, pid in pids.items()
    }
    latencies = [seen[i] - at for i, at in accepted.items() if i in seen]
    return {
        "offered_per_s": rate,
        "seconds": SECONDS,
        "mix": "1:1 email (premium emergency) / sms webhook (premium emergency)",
        "sent": sent,
        "accepted": len(accepted),
        "delivered": len(latencies),
        "lost": len(accepted) - len(latencies),
        "refused": len(failures),
        "p50_ms": _ms(latencies, 50),
        "p95_ms": _ms(latencies, 95),
        "p99_ms": _ms(latencies, 99),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else float("nan"),
        "cpu_ms_per_request": cpu,
        "peak_queue_by_durable": peaks,
        "goal": "p50 < 20 ms, p99 < 100 ms at 100/s, lost 0",
    }
