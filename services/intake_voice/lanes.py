"""How requests reach intake_voice's webhooks: a direct lane for their POSTs, docs on demand, a body cap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class BodyTooLarge(Exception):
    """The body is over the cap: answered 413 and the connection closed, the rest never read."""


async def capped_body(request: Request, cap: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `cap` bytes.

    A declared Content-Length over the cap is refused before one body byte is read; a chunked body
    is read only until it passes the cap. Nothing larger than the cap is ever held in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookLane:
    """POSTs to a webhook path go straight to their endpoint; everything else goes to the router app.

    Why: per webhook, the framework's middleware stack and route matching cost more than the
    webhook's own work. The endpoint is the very function the router app routes to (and documents
    in development), so answers are the same; an unexpected error still becomes uvicorn's 500.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class DocsOnDemand:
    """Development: /docs, /redoc and /openapi.json from a FastAPI app built at the first such request.

    Why: FastAPI and pydantic hold about 14 MB resident; a process nobody asks for docs never loads them.
    """

    PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

    def __init__(self, app: ASGIApp, build: Callable[[], ASGIApp]) -> None:
        self.app = app
        self.build = build
        self.docs: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.PATHS:
            if self.docs is None:
                self.docs = self.build()
            await self.docs(scope, receive, send)
            return
        await self.app(scope, receive, send)


def documented(endpoints: dict[str, Endpoint], probes: dict[str, Endpoint]) -> ASGIApp:
    """The same routes on FastAPI, which describes them."""
    from fastapi import FastAPI  # see DocsOnDemand: imported only when docs are asked for

    app = FastAPI(title="frontdesk intake_voice")
    for path, endpoint in endpoints.items():
        app.add_api_route(path, endpoint, methods=["POST"], response_class=Response)
    for path, probe in probes.items():
        app.add_api_route(path, probe, methods=["GET"], response_class=JSONResponse)
    return app
