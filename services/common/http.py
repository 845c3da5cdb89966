"""Serve an ASGI app with uvicorn inside the caller's event loop (signals stay with our lifecycle)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The service's lifecycle owns SIGINT/SIGTERM; uvicorn must not steal them.
        yield


class HttpServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # re-raise the bind error
                raise RuntimeError("http server stopped during start")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("not listening")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


def health_app(
    ready: Callable[[], bool],
    details: Callable[[], dict[str, Any]] | None = None,
    registry: CollectorRegistry | None = None,
) -> Starlette:
    """/healthz (process alive), /readyz (dependencies reachable) and Prometheus /metrics."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ok = ready()
        body: dict[str, Any] = {"status": "ready" if ok else "not ready"}
        if details is not None:
            body.update(details())
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        body = generate_latest(registry) if registry is not None else generate_latest()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    )
