"""workers.py: several intake processes on one SMTP port, supervised by the primary, stopped with it."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
from pathlib import Path

import httpx
import pytest

from services.common.bus import Bus
from services.common.config import BusConfig, ConfigError, Secret
from services.common.natsserver import free_port
from services.contracts import subjects as s
from services.intake_email.app import main
from services.intake_email.config import SmtpConfig, load_config
from tests.intake_email.senders import AUTHSERV_ID, passed
from tests.support import serving

SUPPORT = "support@frontdesk.test"


def _children() -> set[int]:
    pid = os.getpid()
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _deliver(port: int, number: int) -> int:
    raw = (
        f"Authentication-Results: {passed('alice@example.com')}\r\nFrom: alice@example.com\r\n"
        f"To: {SUPPORT}\r\nSubject: Printer {number}\r\nMessage-ID: <w{number}@example.com>\r\n"
        "\r\nJammed.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("alice@example.com")
        client.rcpt(SUPPORT)
        return client.data(raw.encode())[0]


async def _workers_listening(http_port: int, want: int, timeout: float = 30.0) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(int(timeout / 0.1)):
            try:
                if (await http.get(f"http://127.0.0.1:{http_port}/readyz")).json().get("workers") == want:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {want} workers listening after {timeout} s")


async def test_workers_share_the_port_are_restarted_and_stop_with_the_primary(
    bus: Bus, bus_config: BusConfig
) -> None:
    cfg = SmtpConfig(
        port=free_port(),
        http_port=free_port(),
        thread_secret=Secret("workers-test-secret"),
        sender_auth="upstream",
        authserv_id=AUTHSERV_ID,
        workers=2,
        bus=bus_config,
    )
    before = _children()
    async with serving(main, cfg, stop_within=20):
        await _workers_listening(cfg.http_port, 2)
        (worker,) = _children() - before - {p for p in _children() if _is_tracker(p)}
        # Separate connections: the kernel spreads them over both processes; every one gets its 250.
        codes = await asyncio.gather(*(asyncio.to_thread(_deliver, cfg.port, n) for n in range(16)))
        assert codes == [250] * 16
        info = await bus.js.stream_info(s.STREAM_REQUESTS)
        assert info.state.messages == 16
        # A worker that dies is started again: its share of the port must not stay closed.
        os.kill(worker, signal.SIGKILL)
        await _workers_listening(cfg.http_port, 2)
        assert await asyncio.to_thread(_deliver, cfg.port, 99) == 250
    assert not {p for p in _children() - before if not _is_tracker(p)}


def _is_tracker(pid: int) -> bool:
    """multiprocessing's resource tracker, which lives as long as the test process does."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_the_default_is_one_worker_per_core_and_a_count_is_taken_as_given() -> None:
    env = {"FRONTDESK_ENV": "development"}
    cores = len(os.sched_getaffinity(0))
    assert load_config(env).workers == cores
    assert load_config({**env, "FRONTDESK_SMTP_WORKERS": "0"}).workers == cores
    assert load_config({**env, "FRONTDESK_SMTP_WORKERS": "1"}).workers == 1
    assert load_config({**env, "FRONTDESK_SMTP_WORKERS": "3"}).workers == 3
    with pytest.raises(ConfigError, match="FRONTDESK_SMTP_WORKERS"):
        load_config({**env, "FRONTDESK_SMTP_WORKERS": "-1"})


async def test_the_primary_refuses_a_port_something_else_already_serves(bus_config: BusConfig) -> None:
    # With SO_REUSEPORT a second intake could otherwise share the port silently.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        cfg = SmtpConfig(port=port, http_port=free_port(), workers=2, bus=bus_config)
        with pytest.raises(OSError, match="in use"):
            await asyncio.wait_for(main(cfg, stop=asyncio.Event()), 20)
