"""Growth past one machine: three clustered nats-servers, the stream leader killed under load.

Every email answered 250 must become exactly one ticket; emails answered 4xx are resent (as a real
MTA would) until accepted. Printed accounting: sent, accepted, tickets, lost, doubled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import msgspec
import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.kvview import snapshot
from services.common.natsserver import NatsServer, free_port
from services.common.process import ChildProcess, stop_all
from services.contracts import Ticket
from services.contracts import subjects as s
from tests.intake_email.senders import AUTHSERV_ID, client_email

ROOT = Path(__file__).resolve().parents[2]
EMAILS = 120
KILL_AFTER = 40


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    cluster_ports = [free_port() for _ in range(3)]
    servers = [
        NatsServer(
            store_dir=tmp_path / f"n{i}",
            name=f"n{i}",
            cluster_port=cluster_ports[i],
            routes=tuple(p for j, p in enumerate(cluster_ports) if j != i),
            log_file=tmp_path / f"n{i}.log",
        )
        for i in range(3)
    ]
    for server in servers:
        server.start(wait=None)
    for server in servers:
        server.wait_ready(60)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def email(i: int) -> EmailMessage:
    return client_email("failover", i)


async def connect_cluster(urls: tuple[str, ...]) -> Bus:
    bus = await Bus.connect(BusConfig(url=urls, replicas=3, publish_timeout=5.0), "failover-test")
    for _ in range(60):  # the JetStream meta leader needs a few seconds after the cluster forms
        try:
            await bus.ensure_topology()
            return bus
        except Exception:
            await asyncio.sleep(0.5)
    raise TimeoutError("cluster never accepted the topology")


# A fault test (a server killed mid-stream, 25 s): it runs with the others in `make faults`.
@pytest.mark.slow
async def test_stream_leader_killed_under_load(cluster: list[NatsServer], tmp_path: Path) -> None:
    urls = tuple(server.url for server in cluster)
    bus = await connect_cluster(urls)
    smtp_port = free_port()
    env = {
        **os.environ,
        "FRONTDESK_ENV": "development",  # the bare cluster has no users: development only
        "FRONTDESK_NATS_URL": ",".join(urls),
        "FRONTDESK_NATS_REPLICAS": "3",
        "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
        "FRONTDESK_THREAD_SECRET": "failover-secret",
        "FRONTDESK_SMTP_PORT": str(smtp_port),
        "FRONTDESK_SMTP_HTTP_PORT": str(free_port()),
        "FRONTDESK_ROUTER_HTTP_PORT": str(free_port()),
        "FRONTDESK_SMTP_RATE_PER_MINUTE": "100000",
        "FRONTDESK_SMTP_SENDER_AUTH": "upstream",
        "FRONTDESK_SMTP_AUTHSERV_ID": AUTHSERV_ID,
    }
    procs = [
        ChildProcess(f"{name}-{n}", f"services.{name}", env, log=tmp_path / f"{name}-{n}.log")
        for n, name in enumerate(("router", "router", "intake_email"))
    ]
    try:
        await procs[-1].wait_port_async(smtp_port)
        accepted: set[int] = set()
        refused_then_resent = 0
        killed: str | None = None
        for i in range(EMAILS):
            if i == KILL_AFTER:
                info = await bus.js.stream_info(s.STREAM_REQUESTS)
                leader = info.cluster.leader if info.cluster else None
                victim = next(server for server in cluster if server.name == leader)
                victim.kill()
                killed = victim.name
            for attempt in range(40):
                try:
                    await aiosmtplib.send(
                        email(i), hostname="127.0.0.1", port=smtp_port, timeout=15, start_tls=False
                    )
                    accepted.add(i)
                    break
                except aiosmtplib.SMTPResponseException as exc:
                    assert 400 <= exc.code < 500, f"permanent refusal {exc.code} {exc.message}"
                    refused_then_resent += 1
                    await asyncio.sleep(0.25 * (attempt + 1))
        # Wait for the routers to catch up, then count tickets by subject.
        counts: collections.Counter[str] = collections.Counter()
        decoder = msgspec.json.Decoder(Ticket)
        for _ in range(120):
            counts.clear()
            with contextlib.suppress(Exception):
                for ticket in (await snapshot(bus, s.KV_TICKETS, ">", decoder.decode)).values():
                    counts[ticket.subject] += 1
            if len(counts) >= len(accepted):
                break
            await asyncio.sleep(0.5)
        expected = {email(i)["Subject"] for i in accepted}
        lost = len(expected - set(counts))
        doubled = sum(1 for subject, n in counts.items() if n > 1)
        print(
            f"\nfailover: killed stream leader {killed} after {KILL_AFTER}; sent={EMAILS} "
            f"accepted={len(accepted)} resent_after_4xx={refused_then_resent} tickets={sum(counts.values())} "
            f"lost={lost} doubled={doubled}"
        )
        assert len(accepted) == EMAILS
        assert lost == 0
        assert doubled == 0
    finally:
        stop_all(procs)
        await bus.close()
