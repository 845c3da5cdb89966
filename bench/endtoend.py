"""End-to-end latency (intake accepted -> tech SMS at the sandbox) and router decisions/s through NATS."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
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
from services.contracts.requests import Sender, ServiceRequest
from services.policy.load import load_policy

RATE = float(os.environ.get("BENCH_E2E_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "20"))
# After the goal rate, higher rates are offered until p99 crosses SATURATED_P99 (the sustainable limit).
SWEEP = tuple(float(r) for r in os.environ.get("BENCH_E2E_SWEEP", "150,200,300").split(",") if r)
SATURATED_P99 = 1.0
DRAIN_WAIT = float(os.environ.get("BENCH_E2E_DRAIN", "20"))  # after the last send: later = lost
ROUTER_REQUESTS = int(os.environ.get("BENCH_ROUTER_REQUESTS", "500"))
TOKEN = "bench-token"
SUPPORT_NUMBER = "+13125550199"
# A premium client's emergency is dispatched (in hours) or paged (after hours) at once, whatever
# the real clock says, so every request must end in a tech SMS.
EMAIL_SENDER = "jane@acme.example"
SMS_SENDER = "+13125550150"
MARKER = re.compile(r"E2EM(\d{6})")
ORDER = ("sandbox", "router", "notifier", "intake_email", "intake_voice")


def _tech_phones() -> set[str]:
    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    return {tech.phone for tech in policy.techs if tech.phone}


def _email(i: int) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = "frontdesk.test; dmarc=pass header.from=acme.example"
    msg["From"] = f"Jane Roe <{EMAIL_SENDER}>"
    msg["To"] = "support@frontdesk.test"
    msg["Subject"] = f"E2EM{i:06d} server down"
    msg["Message-ID"] = f"<e2e-{i}-{uuid.uuid4().hex}@acme.example>"
    msg.set_content(f"E2EM{i:06d} the MES server is down on the plant floor.\n")
    return msg.as_bytes()


async def _topology(nats_url: str) -> None:
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


async def bench_stack(nats_url: str, logs: Path, tmp: Path, nats_pid: int | None = None) -> dict[str, Any]:
    """Run the whole stack once; measure end-to-end latency, then router decisions/s on the same bus."""
    sandbox_port, sandbox_smtp, smtp_port, voice_port = (free_port() for _ in range(4))
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    voice = f"http://127.0.0.1:{voice_port}"
    env = stack.service_env(
        nats_url,
        FRONTDESK_TWILIO_API_BASE=sandbox,
        FRONTDESK_TWILIO_AUTH_TOKEN=TOKEN,
        FRONTDESK_TWILIO_FROM=SUPPORT_NUMBER,
        FRONTDESK_SANDBOX_PHONE_NUMBER=SUPPORT_NUMBER,
        FRONTDESK_SANDBOX_PORT=str(sandbox_port),
        FRONTDESK_SANDBOX_SMTP_PORT=str(sandbox_smtp),
        FRONTDESK_SANDBOX_WEBHOOK_BASE=voice,
        FRONTDESK_NOTIFIER_RELAY_HOST="127.0.0.1",
        FRONTDESK_NOTIFIER_RELAY_PORT=str(sandbox_smtp),
        # As in production: Twilio reports each SMS's final status back through intake_voice.
        FRONTDESK_NOTIFIER_STATUS_CALLBACK=f"{voice}/twilio/sms/status",
        FRONTDESK_SMTP_PORT=str(smtp_port),
        FRONTDESK_VOICE_PORT=str(voice_port),
        FRONTDESK_VOICE_PUBLIC_URL=voice,
        FRONTDESK_VOICE_SPOOL_DIR=str(tmp / "e2e-spool"),
    )
    await _topology(nats_url)
    procs: dict[str, ChildProcess] = {}
    try:
        for name in ORDER:
            procs[name] = stack.service(name, env, logs)
        procs["sandbox"].wait_port(sandbox_port)
        procs["sandbox"].wait_port(sandbox_smtp)
        procs["intake_email"].wait_port(smtp_port)
        procs["intake_voice"].wait_port(voice_port)
        await asyncio.sleep(1.0)  # router and notifier have no port: give their consumers a moment
        drained = await _drain(nats_url)
        pids = {name: p.pid for name, p in procs.items()} | ({"nats": nats_pid} if nats_pid else {})
        end_to_end = await _end_to_end(sandbox, smtp_port, voice, RATE, pids)
        end_to_end["before"] = drained
        end_to_end["peak_rss_mb"] = {name: round(tree_peak_rss_mb(p.pid), 1) for name, p in procs.items()}
        sweep = []
        for rate in SWEEP:
            await _drain(nats_url)
            step = await _end_to_end(sandbox, smtp_port, voice, rate, pids)
            sweep.append({k: step[k] for k in ("offered_per_s", "p50_ms", "p99_ms", "lost", "refused")})
            if step["p99_ms"] > SATURATED_P99 * 1000 or step["lost"]:
                break
        end_to_end["sweep"] = sweep
        limit_ms = SATURATED_P99 * 1000
        held = [RATE] if end_to_end["p99_ms"] <= limit_ms else []
        held += [step["offered_per_s"] for step in sweep if step["p99_ms"] <= limit_ms]
        end_to_end["highest_rate_p99_under_1s"] = max(held, default=None)
        await _drain(nats_url)
        router = await _router_through_nats(nats_url)
    finally:
        for name in reversed(ORDER):
            if name in procs:
                procs[name].stop()
    return {"end_to_end": end_to_end, "router_through_nats": router}


async def _end_to_end(
    sandbox: str, smtp_port: int, voice: str, rate: float, pids: dict[str, int]
) -> dict[str, Any]:
    techs = _tech_phones()
    accepted: dict[int, float] = {}
    failures: list[str] = []
    # Every stage numbers its requests from 0: the SMS of an earlier stage must not match this one's.
    async with httpx.AsyncClient(base_url=sandbox, timeout=30) as client:
        (await client.delete("/api/messages")).raise_for_status()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    sent = await _offer(smtp_port, voice, rate, accepted, failures)
    seen = await _delivered(sandbox, techs, accepted)
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
        "goal": "p50 < 20 ms, p99 < 100 ms at 100/s, lost 0",
    }


async def _ticket_count(bus: Bus) -> int:
    # Subjects of the bucket's stream, not kv.keys(): every keys() leaves an ephemeral consumer on
    # the server for five minutes, and polling it would run into the stream's consumer limit.
    info = await bus.js.stream_info(f"KV_{s.KV_TICKETS}", subjects_filter=f"$KV.{s.KV_TICKETS}.>")
    return len(info.state.subjects or {})


async def bench_router(nats_url: str, logs: Path) -> dict[str, Any]:
    """The router alone (its own process, nothing else on the bus): decisions/s through NATS."""
    await _topology(nats_url)
    http_port = free_port()
    env = stack.service_env(nats_url, FRONTDESK_ROUTER_HTTP_PORT=str(http_port))
    proc = stack.service("router", env, logs)
    try:
        proc.wait_port(http_port)
        return await _router_through_nats(nats_url)
    finally:
        proc.stop()


async def _router_through_nats(nats_url: str) -> dict[str, Any]:
    """Publish requests straight to the bus and time until the router has opened a ticket for each."""
    bus = await Bus.connect(BusConfig(url=(nats_url,)), "bench-router")
    try:
        before = await _ticket_count(bus)
        run = uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        for i in range(ROUTER_REQUESTS):
            req = ServiceRequest(
                id=f"bench-{run}-{i}",
                channel="email",
                received_at=datetime.now(UTC),
                sender=Sender(email=EMAIL_SENDER, name="Jane Roe"),
                recipient="support@frontdesk.test",
                subject=f"Printer on floor {i % 5} jammed ({run} {i})",
                body="The printer shows error 50.4 after every third page.",
            )
            await bus.publish(s.request_subject("email"), req, msg_id=req.id)
        published = time.perf_counter() - t0
        made = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            made = await _ticket_count(bus) - before
            if made >= ROUTER_REQUESTS:
                break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - t0
    finally:
        await bus.close()
    return {
        "requests": ROUTER_REQUESTS,
        "tickets": made,
        "publish_s": round(published, 2),
        "seconds": round(seconds, 2),
        # Counted by polling the bucket, so the rate is a lower bound (poll interval 0.1 s).
        "decisions_per_s": round(min(made, ROUTER_REQUESTS) / seconds, 1),
    }
