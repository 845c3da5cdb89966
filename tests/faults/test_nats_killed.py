"""Fault: nats-server SIGKILLed and restarted during a stream of emails and texts.

Every message answered 250 (email) or 200 (text) must become exactly one ticket; emails answered
4xx are resent, as a sending MTA would, and must then succeed. Prints sent / accepted / tickets /
lost / doubled.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.natsserver import free_port
from services.common.process import ChildProcess, stop_all
from tests.conftest import auth_server
from tests.faults.traffic import TOKEN, count_tickets, email, signed_sms, stack_env

EMAILS = int(os.environ.get("FAULTS_EMAILS", "500"))
TEXTS = int(os.environ.get("FAULTS_TEXTS", "200"))

pytestmark = pytest.mark.slow


async def test_nats_killed_and_restarted_mid_stream(tmp_path: Path) -> None:
    nats = auth_server(tmp_path, log_file=tmp_path / "nats.log")
    nats.start()
    await asyncio.to_thread(nats.create_topology)
    smtp_port, voice_port = free_port(), free_port()
    voice = f"http://127.0.0.1:{voice_port}"
    env = stack_env(tmp_path, smtp_port=smtp_port, voice_port=voice_port, router_http=free_port())
    procs = [
        ChildProcess.service(n, {**env, **nats.service_env(n)}, log_dir=tmp_path)
        for n in ("router", "intake_email", "intake_voice")
    ]
    bus: Bus | None = None
    try:
        await procs[1].wait_port_async(smtp_port)
        await procs[2].wait_port_async(voice_port)
        validator = RequestValidator(TOKEN)
        accepted: set[str] = set()
        resent = 0
        kill_at = EMAILS // 3
        restarted: asyncio.Task[None] | None = None

        async def restart_later() -> None:
            # NATS stays down for a few seconds of real traffic, then comes back on the same store.
            await asyncio.sleep(8.0)
            await asyncio.to_thread(nats.start)

        async with httpx.AsyncClient(base_url=voice, timeout=20) as http:

            async def text(j: int) -> None:
                marker, params, sig = signed_sms(validator, voice, j)
                for _ in range(20):
                    rsp = await http.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": sig})
                    if rsp.status_code == 200:
                        accepted.add(marker)
                        return
                    await asyncio.sleep(0.5)

            for i in range(EMAILS):
                if i == kill_at:
                    nats.kill()
                    restarted = asyncio.create_task(restart_later())
                if i % max(1, EMAILS // TEXTS) == 0 and (j := i // max(1, EMAILS // TEXTS)) < TEXTS:
                    await text(j)
                for attempt in range(60):
                    try:
                        await aiosmtplib.send(email(i), hostname="127.0.0.1", port=smtp_port, timeout=15)
                        accepted.add(f"fault-em-{i:04d}")
                        break
                    except aiosmtplib.SMTPResponseException as exc:
                        assert 400 <= exc.code < 500, f"permanent refusal {exc.code}"
                        resent += 1
                        await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))
        assert restarted is not None
        await restarted
        bus = await Bus.connect(nats.config_for(), "faults")
        deadline = time.monotonic() + 120
        counts = await count_tickets(bus)
        while set(counts) < accepted and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            counts = await count_tickets(bus)
        lost = len(accepted - set(counts))
        doubled = sum(1 for n in counts.values() if n > 1)
        print(
            f"\nnats killed: sent={EMAILS + TEXTS} (emails {EMAILS}, texts {TEXTS}) accepted={len(accepted)} "
            f"resent_after_4xx={resent} tickets={sum(counts.values())} lost={lost} doubled={doubled}"
        )
        assert len(accepted) == EMAILS + TEXTS
        assert lost == 0
        assert doubled == 0
    finally:
        stop_all(procs)
        if bus is not None:
            await bus.close()
        nats.stop()
