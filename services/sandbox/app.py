"""Sandbox service: Twilio look-alike over HTTP plus an SMTP sink, both inside one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP

from services.common.clock import Clock, SystemClock
from services.common.config import load
from services.common.http import HttpServer
from services.sandbox import api
from services.sandbox.config import SandboxConfig
from services.sandbox.mail import MailSink

log = logging.getLogger(__name__)


class Sandbox:
    """Start/stop the sandbox in-process; tests use `async with Sandbox(cfg) as sandbox`."""

    def __init__(self, cfg: SandboxConfig, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.ledger = api.Ledger()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._server: HttpServer | None = None
        self._smtp: asyncio.Server | None = None

    @classmethod
    def on_free_ports(cls, webhook_base: str = "http://127.0.0.1:8080", **overrides: Any) -> Sandbox:
        """Port 0 lets the kernel pick at bind time: no race between choosing a port and binding it."""
        fields: dict[str, Any] = {"port": 0, "smtp_port": 0, "webhook_base": webhook_base}
        fields.update(overrides)
        return cls(load(SandboxConfig, "FRONTDESK_SANDBOX_", env={}, **fields))

    @property
    def url(self) -> str:
        """Base URL to give the twilio SDK (`client.api.base_url = sandbox.url`)."""
        port = self._server.port if self._server is not None else self.cfg.port
        return f"http://{self.cfg.host}:{port}"

    @property
    def smtp_port(self) -> int:
        if self._smtp is not None:
            return int(self._smtp.sockets[0].getsockname()[1])
        return self.cfg.smtp_port

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=10.0)
        app = api.build(self.cfg, self.ledger, self.clock, self._http, self._tasks)
        self._server = HttpServer(app, self.cfg.host, self.cfg.port)
        await self._server.start()
        sink = MailSink(self.ledger.emails, self.clock.now)
        loop = asyncio.get_running_loop()
        self._smtp = await loop.create_server(
            lambda: SMTP(sink, hostname="sandbox.local", ident="Frontdesk sandbox relay"),
            host=self.cfg.host,
            port=self.cfg.smtp_port,
        )
        log.info("sandbox listening http=%s smtp=%s", self.url, self.smtp_port)

    async def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
            self._smtp = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def main(cfg: SandboxConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    async with Sandbox(cfg, clock):
        await stop.wait()
