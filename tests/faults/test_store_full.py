"""Fault: JetStream's store fills up while mail and texts keep coming, then the limit is lifted.

A small store (max_file_store 64 MB, small stream and bucket limits): the tickets bucket and the dead
letters are filled to their limits, so the router can neither open a ticket nor park a request as a dead
letter. Mail over the real SMTP socket and signed SMS webhooks keep arriving for longer than the old
max_deliver backoff lasted. Then the server restarts with a bigger store on the same store folder and ops
raises the limits. Every request that was answered 250/200 must end as a ticket or a visible dead letter:
accepted = tickets + dead letters, 0 lost. Prints one accounting line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.request
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from twilio.request_validator import RequestValidator

from services.common.bus import Bus, PublishFailed
from services.common.config import Retention
from services.common.natsserver import free_port
from services.common.process import ChildProcess, stop_all
from services.contracts import subjects as s
from services.deadletters.letters import read
from tests.conftest import AuthServer, auth_server
from tests.faults.traffic import MARK, TOKEN, count_tickets, email, signed_sms, stack_env

pytestmark = pytest.mark.slow

FULL_FOR = float(os.environ.get("FAULTS_FULL_SECONDS", "50"))  # > the old 5-delivery backoff (~43 s)
SMALL_STORE = "\njetstream { max_file_store: 64MB }\n"
BIG_STORE = "\njetstream { max_file_store: 1GB }\n"
# Reserved limits must fit the 64 MB store; the lifted ones the bigger store.
SMALL = Retention(
    requests_mb=4, replies_mb=1, notify_mb=2, outbox_mb=1, timeline_mb=2, dead_letters_mb=1, raw_mail_mb=8,
    tickets_mb=1, threads_mb=1, timers_mb=1, router_mb=1, sequences_mb=1, outbound_mb=1, contacts_mb=1,
    windows_mb=1, seen_mb=1,
)  # fmt: skip
LIFTED = Retention(
    requests_mb=32, replies_mb=8, notify_mb=16, outbox_mb=8, timeline_mb=16, dead_letters_mb=8,
    raw_mail_mb=64, tickets_mb=32, threads_mb=8, timers_mb=8, router_mb=8, sequences_mb=1, outbound_mb=8,
    contacts_mb=8, windows_mb=8, seen_mb=8,
)  # fmt: skip


async def fill(bus: Bus, subject_of: str) -> int:
    """Write 4 KB junk entries under `subject_of` (a format with {n}) until JetStream refuses one."""
    for n in range(10_000):
        try:
            await bus.publish_bytes(
                subject_of.format(n=n), b"j" * 4096, msg_id=f"junk-{subject_of}-{n}", timeout=2
            )
        except PublishFailed:
            return n
    raise AssertionError(f"{subject_of} never filled")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as rsp:
            return int(rsp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def metric(url: str, name: str) -> float:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as rsp:
        for line in rsp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


async def test_store_full_then_lifted_loses_nothing(tmp_path: Path) -> None:
    nats: AuthServer = auth_server(tmp_path, log_file=tmp_path / "nats.log", extra=SMALL_STORE)
    nats.start()
    await asyncio.to_thread(nats.create_topology, SMALL)
    smtp_port, voice_port, router_http = free_port(), free_port(), free_port()
    voice = f"http://127.0.0.1:{voice_port}"
    env = stack_env(tmp_path, smtp_port=smtp_port, voice_port=voice_port, router_http=router_http)
    procs = [
        ChildProcess.service(n, {**env, **nats.service_env(n)}, log_dir=tmp_path)
        for n in ("router", "intake_email", "intake_voice")
    ]
    ops = await Bus.connect(nats.config_for(), "faults-ops")
    validator = RequestValidator(TOKEN)
    accepted: set[str] = set()
    refused = 0
    ready_while_full: set[int] = set()
    try:
        await procs[1].wait_port_async(smtp_port)
        await procs[2].wait_port_async(voice_port)
        async with httpx.AsyncClient(base_url=voice, timeout=20) as http:

            async def mail(i: int) -> None:
                nonlocal refused
                try:
                    await aiosmtplib.send(email(i), hostname="127.0.0.1", port=smtp_port, timeout=15)
                    accepted.add(f"fault-em-{i:04d}")
                except aiosmtplib.SMTPResponseException as exc:
                    assert 400 <= exc.code < 500, f"permanent refusal {exc.code}"
                    refused += 1

            async def text(j: int) -> None:
                nonlocal refused
                marker, params, sig = signed_sms(validator, voice, j)
                rsp = await http.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": sig})
                if rsp.status_code == 200:
                    accepted.add(marker)
                else:
                    refused += 1

            # Before: the stack works.
            for i in range(5):
                await mail(i)
                await text(i)
            deadline = time.monotonic() + 30
            while set(await count_tickets(ops)) < accepted and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            assert set(await count_tickets(ops)) >= accepted, "the stack did not work before the fault"
            # Fill: no room for a ticket, nor for a dead letter.
            junk = await fill(ops, f"$KV.{s.KV_TICKETS}.junk{{n}}")
            junk += await fill(ops, s.dlq_subject("junk") + ".{n}")
            # During: keep sending for longer than the old max_deliver backoff.
            started, n = time.monotonic(), 5
            while time.monotonic() - started < FULL_FOR:
                await mail(n)
                if n % 3 == 0:
                    await text(n)
                ready_while_full.add(status(f"http://127.0.0.1:{router_http}/readyz"))
                n += 1
                await asyncio.sleep(0.5)
            refusals = metric(f"http://127.0.0.1:{router_http}/metrics", "frontdesk_storage_refused_total")
        # Lift: a bigger store on the same folder, and ops raises the limits.
        await ops.close()
        nats.stop()
        ports = {"port": nats.port, "monitor_port": nats.monitor_port}
        nats = auth_server(tmp_path, log_file=tmp_path / "nats.log", extra=BIG_STORE, **ports)
        nats.start()  # the finally below stops this one
        await asyncio.to_thread(nats.create_topology, LIFTED)
        ops = await Bus.connect(nats.config_for(), "faults-ops")
        deadline = time.monotonic() + 120
        tickets, dead = set(await count_tickets(ops)), set[str]()
        while not accepted <= tickets | dead and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            tickets = set(await count_tickets(ops))
            dead = {
                m.group()
                for letter in await read(ops)
                if (m := MARK.search(letter.data.decode("utf-8", "replace")))
            }
        lost = accepted - tickets - dead
        print(
            f"\nstore full: accepted={len(accepted)} refused_4xx={refused} tickets={len(accepted & tickets)} "
            f"dead_letters={len(accepted & dead)} lost={len(lost)} junk_entries={junk} "
            f"router_storage_refusals={refusals:.0f} router_readyz_while_full={sorted(ready_while_full)}"
        )
        assert not lost, sorted(lost)
        assert 503 in ready_while_full and refusals > 0
        assert status(f"http://127.0.0.1:{router_http}/readyz") == 200
    finally:
        stop_all(procs)
        await ops.close()
        nats.stop()
