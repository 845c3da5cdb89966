"""Policy reload: a valid change is picked up (file change or SIGHUP); an invalid file keeps the old one."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from services.common.bus import Bus
from services.common.clock import SystemClock
from services.policy.load import load_policy
from services.router.app import Router, watch_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


async def wait_for(check: object, timeout: float = 5.0) -> None:
    assert callable(check)
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_reload_keeps_old_policy_when_invalid(
    bus: Bus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    text = EXAMPLE.read_text()
    path.write_text(text)
    router = Router(bus, load_policy(path), SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(watch_policy(router, str(path), stop, poll=0.05))
    await asyncio.sleep(0.2)  # let the watcher install its SIGHUP handler first
    try:
        # An invalid edit (unknown tier) is refused: the running policy does not change.
        original = router.policy
        path.write_text(text.replace("tier: premium", "tier: platinum", 1))
        os.utime(path, (1, 1))
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: "policy reload refused" in caplog.text)
        assert router.policy is original
        # A valid edit is picked up from the file change alone.
        path.write_text(text.replace("Northwind IT Services", "Northwind Field Services", 1))
        os.utime(path, (2, 2))
        await wait_for(lambda: router.policy.desk.name == "Northwind Field Services")
    finally:
        stop.set()
        await task


async def test_watcher_stops_at_once(bus: Bus, tmp_path: Path) -> None:
    """A router shutdown does not wait out the policy poll (it used to wait up to 2 s)."""
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE.read_text())
    router = Router(bus, load_policy(path), SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(watch_policy(router, str(path), stop, poll=30.0))
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert loop.time() - started < 1.0
