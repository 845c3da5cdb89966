"""Worker processes sharing intake_voice's public port through SO_REUSEPORT, started and kept by worker 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from services.common.http import HttpServer
from services.common.process import ROOT
from services.intake_voice.config import VoiceConfig

log = logging.getLogger(__name__)
_RESTART_DELAY = 1.0  # a worker that keeps crashing is not restarted in a tight loop
_STOP_TIMEOUT = 10.0


def listening_socket(host: str, port: int, *, first: bool) -> socket.socket:
    """A socket bound with SO_REUSEPORT: every worker binds the same port, the kernel spreads connections.

    The `first` worker makes sure the port is free before: SO_REUSEPORT would otherwise let a second
    intake_voice (a stale one, another stack) share the port silently instead of failing to start.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if first and port:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))  # EADDRINUSE when anything listens there, with or without reuse
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class WebhookServer(HttpServer):
    """The public port served on a socket we bound (shared with the other workers).

    uvicorn's proxy-headers layer is off: it rewrites the peer address from X-Forwarded-For, which no
    webhook reads (signatures are checked against our public URL), and it costs every request.
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(app, host, port)
        self.server.config.proxy_headers = False
        self.sock = sock

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("http server stopped during start")
            await asyncio.sleep(0.01)


class Workers:
    """Workers 1..n-1 as child processes of worker 0, in its process group: a signal to the service's
    group reaches every worker. One that exits unexpectedly is started again."""

    def __init__(self, cfg: VoiceConfig, port: int) -> None:
        self.cfg = cfg
        self.port = port  # the actual port: with port 0 the first bind chose it
        self.children: dict[int, subprocess.Popen[bytes]] = {}

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(
            FRONTDESK_VOICE_PORT=str(self.port),
            FRONTDESK_VOICE_WORKERS="1",
            FRONTDESK_VOICE_WORKER=str(index),
            FRONTDESK_VOICE_HTTP_PORT=str(self.cfg.http_port + index if self.cfg.http_port else 0),
        )
        return subprocess.Popen([sys.executable, "-m", "services.intake_voice"], env=env, cwd=ROOT)

    async def run(self, stop: asyncio.Event) -> None:
        for index in range(1, self.cfg.workers):
            self.children[index] = self._spawn(index)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RESTART_DELAY)
                for index, child in list(self.children.items()):
                    if child.poll() is not None and not stop.is_set():
                        log.error(
                            "worker exited; starting it again",
                            extra={"worker": index, "code": child.returncode},
                        )
                        self.children[index] = self._spawn(index)
        finally:
            await asyncio.to_thread(self._stop_all)

    def _stop_all(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


async def watch_parent(stop: asyncio.Event, interval: float = 1.0) -> None:
    """A worker whose worker 0 died (SIGKILL, OOM) stops too, instead of holding the port as an orphan."""
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            log.error("worker 0 is gone; stopping")
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
