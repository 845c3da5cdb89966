"""Child processes (a service, a baseline): start in their own session, await a port, stop the group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ChildProcess:
    """`python -m <module>` in a new session, so stopping it also stops anything it started."""

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        *,
        log: Path | None = None,
        args: Iterable[str] = (),
    ) -> None:
        self.name = name
        command = [sys.executable, "-m", module, *args]
        if log is None:
            # Inherit our stdout/stderr: `make run` shows every service's log lines in one terminal.
            self.proc = subprocess.Popen(command, env=dict(env), cwd=ROOT, start_new_session=True)
        else:
            with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
                self.proc = subprocess.Popen(
                    command,
                    env=dict(env),
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    @classmethod
    def service(cls, name: str, env: Mapping[str, str], *, log_dir: Path | None = None) -> ChildProcess:
        log = log_dir / f"{name}.log" if log_dir is not None else None
        return cls(name, f"services.{name}", env, log=log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _check_alive(self, port: int) -> None:
        if not self.running:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before listening on {port}")

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        """Block until the child listens on `port`; fail fast if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(port)
            if port_open(port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: nothing listening on {port} after {timeout} s")

    async def wait_port_async(self, port: int, timeout: float = 30.0) -> None:
        """The same, for callers whose event loop must keep running meanwhile (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            self._check_alive(port)
            if await asyncio.to_thread(port_open, port):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name}: nothing listening on {port} after {timeout} s")

    def peak_rss_mb(self) -> float:
        """The most resident memory the child ever had (read before stopping it)."""
        return peak_rss_mb(self.pid)

    def signal(self, signum: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):  # it exited between the check and the signal
                os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown code runs."""
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True when it stopped on its own."""
        return stop_all([self], timeout) == []


def stop_all(children: Iterable[ChildProcess], timeout: float = 10.0) -> list[str]:
    """SIGTERM every child (last started first), wait up to `timeout` for all; returns the names killed."""
    ordered = list(children)[::-1]
    for child in ordered:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed: list[str] = []
    for child in ordered:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed.append(child.name)
            child.kill()
    return killed


def peak_rss_mb(pid: int) -> float:
    """VmHWM from /proc: the most resident memory process `pid` ever had; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
