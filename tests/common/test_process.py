"""services.common.process: a child starts in its own session, is found on its port, stops with its group."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from services.common.natsserver import free_port
from services.common.process import ChildProcess, port_open, stop_all


def test_child_listens_then_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    args = (str(port), "-b", "127.0.0.1")
    child = ChildProcess("http", "http.server", os.environ, log=tmp_path / "http.log", args=args)
    child.wait_port(port)
    assert port_open(port) and child.peak_rss_mb() > 0
    assert os.getpgid(child.pid) == child.pid  # its own process group, so stop reaches its children
    assert stop_all([child]) == []
    assert child.proc.returncode == -signal.SIGTERM and not port_open(port)


def test_child_that_exits_early_fails_fast(tmp_path: Path) -> None:
    child = ChildProcess("broken", "no_such_module_here", os.environ, log=tmp_path / "broken.log")
    with pytest.raises(RuntimeError, match="broken exited"):
        child.wait_port(free_port(), timeout=30)
    assert "No module named" in (tmp_path / "broken.log").read_text()


def test_stubborn_child_is_killed(tmp_path: Path) -> None:
    # A module that ignores SIGTERM, importable with -m from a temporary folder.
    (tmp_path / "stubborn.py").write_text(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    child = ChildProcess("stubborn", "stubborn", {**os.environ, "PYTHONPATH": str(tmp_path)}, log=log)
    for _ in range(600):
        if "ready" in log.read_text():
            break
        time.sleep(0.05)
    assert stop_all([child], timeout=0.5) == ["stubborn"]
    assert child.proc.returncode == -signal.SIGKILL
