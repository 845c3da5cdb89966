"""Worker processes share the public port, each with its own NATS connection; worker 0 keeps them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.natsserver import NatsServer, free_port
from services.common.process import ChildProcess
from services.contracts import subjects as s
from services.intake_voice.workers import listening_socket
from tests.conftest import AuthServer
from tests.intake_voice.harness import ALICE, PUBLIC, STRONG_TOKEN, process_env, stored

SENT = 60


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _native_packages(pid: int) -> set[str]:
    """Third-party packages whose compiled extensions a process has loaded (they show in its maps)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split("/site-packages/")[1].split("/")[0] for line in maps if "/site-packages/" in line}


def _voice_connections(nats: NatsServer) -> list[dict[str, int]]:
    url = f"http://127.0.0.1:{nats.monitor_port}/connz"
    with urllib.request.urlopen(url, timeout=5) as answer:
        found = json.loads(answer.read())["connections"] or []
    return [c for c in found if c.get("name") == "intake_voice"]


@pytest.fixture
def two_workers(nats_server: AuthServer, tmp_path: Path) -> Iterator[tuple[ChildProcess, int]]:
    port = free_port()
    env = process_env(
        nats_server.service_env("intake_voice"), tmp_path / "spool", port=port, http_port=0, workers=2
    )
    nats_server.create_topology()  # ops' step: the service's own user may not create streams
    proc = ChildProcess.service("intake_voice", env, log_dir=tmp_path)
    try:
        proc.wait_port(port)
        _wait(lambda: len(_voice_connections(nats_server)) == 2, "two workers never both connected")
        yield proc, port
    finally:
        proc.stop()


async def _send_sms(port: int, first: int, count: int) -> None:
    validator = RequestValidator(STRONG_TOKEN)
    for i in range(first, first + count):
        params = {"MessageSid": f"SM{i:04d}", "From": ALICE, "To": "+13125550000", "Body": f"printer {i}"}
        sig = validator.compute_signature(PUBLIC + "/twilio/sms", params)
        # A fresh connection each time: the kernel picks a worker per connection.
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                f"http://127.0.0.1:{port}/twilio/sms", data=params, headers={"X-Twilio-Signature": sig}
            )
        assert answer.status_code == 200, answer.text


async def test_two_workers_share_the_port_and_each_publishes_on_its_own_connection(
    two_workers: tuple[ChildProcess, int], nats_server: NatsServer, bus: Bus
) -> None:
    proc, port = two_workers
    (child,) = _children(proc.pid)
    await _send_sms(port, 0, SENT)
    published = [c["in_msgs"] for c in _voice_connections(nats_server)]
    # Both workers took a share (all 60 connections on one worker: odds of 2^-59), none lost or doubled.
    assert len(published) == 2 and all(n > 0 for n in published), published
    found = await stored(bus, s.STREAM_REQUESTS)
    assert sorted(h["Nats-Msg-Id"] for _, h, _ in found) == [f"SM{i:04d}" for i in range(SENT)]
    # Resident memory: having served, neither worker holds pydantic (FastAPI's docs are built only when
    # asked for) or aiohttp (nats-py's WebSocket transport), while it does hold what it uses.
    for pid in (proc.pid, child):
        loaded = _native_packages(pid)
        assert "msgspec" in loaded and not loaded & {"pydantic_core", "aiohttp"}, loaded

    # A worker that crashes is started again by worker 0, and the port keeps answering meanwhile.
    os.kill(child, signal.SIGKILL)
    await asyncio.to_thread(
        _wait, lambda: [c for c in _children(proc.pid) if c != child and _alive(c)], "no restart"
    )
    await _send_sms(port, SENT, 10)
    await asyncio.to_thread(
        _wait, lambda: len(_voice_connections(nats_server)) == 2, "restarted worker never connected"
    )

    # Stopping the service (SIGTERM to its group) stops every worker.
    (replacement,) = [c for c in _children(proc.pid) if _alive(c)]
    assert proc.stop()
    assert not _alive(replacement)


def test_a_worker_whose_worker_0_dies_stops_instead_of_holding_the_port(
    two_workers: tuple[ChildProcess, int],
) -> None:
    proc, _ = two_workers
    (child,) = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # worker 0 alone, as an OOM kill would
    proc.proc.wait()
    _wait(lambda: not _alive(child), "orphaned worker kept running", timeout=15)


def test_the_first_worker_refuses_a_port_another_intake_voice_already_serves() -> None:
    # SO_REUSEPORT would let a stale or second service share the port silently; worker 0 checks first.
    other = listening_socket("127.0.0.1", 0, first=True)
    other.listen()
    port = other.getsockname()[1]
    try:
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port, first=True)
        joined = listening_socket("127.0.0.1", port, first=False)  # how workers 1..n-1 join worker 0
        joined.close()
    finally:
        other.close()
    listening_socket("127.0.0.1", port, first=True).close()  # free again once the other is gone
