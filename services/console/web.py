"""The console's HTTP side: sign-in, pages, JSON APIs, the iCalendar feed and the desk actions."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.clock import Clock
from services.console.clocks import state_text
from services.console.config import ConsoleConfig
from services.console.desk import Desk, RangeError
from services.console.report import DAYS, Report, minutes, to_csv
from services.console.schedule import feed_token, feed_token_ok, ical_feed, shifts
from services.console.session import COOKIE, LOGIN_COOKIE, Session, Signer, Throttle
from services.console.users import User, verify
from services.contracts.commands import DeskCommand
from services.policy.model import Policy

HERE = Path(__file__).resolve().parent
TICKET = re.compile(r"^SR-\d{1,9}$")
UPDATE_MAX = 600
MAX_FORM = 8192  # bytes: every form here is small; anything bigger is refused before parsing
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # feed URLs carry their secret: never leak them in a Referer
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Publish = Callable[[str, DeskCommand], Awaitable[None]]


class SignInFirst(Exception):
    """Asked for without a session: a page answers with the sign-in page (then back to it), the JSON
    API and the rows poll with 401."""

    def __init__(self, *, json: bool) -> None:
        super().__init__("sign in first")
        self.json = json


class Console:
    """Everything a request needs; built once per process."""

    def __init__(
        self,
        cfg: ConsoleConfig,
        policy: Policy,
        desk: Desk,
        *,
        users: dict[str, User],
        clock: Clock,
        publish: Publish,
        session_secret: str,
        feed_secret: str,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.desk = desk
        self.users = users
        self.clock = clock
        self.publish = publish
        self.signer = Signer(session_secret, cfg.session_max_age)
        self.feed_secret = feed_secret
        self.throttle = Throttle(cfg.login_failures, timedelta(seconds=cfg.login_window))
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
        )
        self.templates.filters["local"] = desk.local
        self.templates.filters["minutes"] = minutes
        self.templates.filters["tech"] = desk.tech_name
        self.templates.filters["state"] = state_text

    def session(self, request: Request) -> tuple[Session, User] | None:
        found = self.signer.read(request.cookies.get(COOKIE))
        user = self.users.get(found.user) if found is not None else None
        if found is None or user is None:
            return None
        return found, user  # the role comes from the users file, not from the cookie

    def report_of(self, request: Request) -> Report | str:
        """The report for the request's `from`/`to` (desk-zone days), or what is wrong with them."""
        now = self.clock.now()
        try:
            start, end = self.desk.report_range(
                request.query_params.get("from"),
                request.query_params.get("to"),
                now.astimezone(self.desk.zone).date(),
            )
        except RangeError as exc:
            return str(exc)
        return self.desk.report(start, end, now)

    def signed_in_only(self, *, json: bool = False) -> list[Any]:
        """A route's dependencies: only a signed-in user gets past them (SignInFirst otherwise)."""

        async def required(request: Request) -> None:
            if self.session(request) is None:
                raise SignInFirst(json=json)

        return [Depends(required)]

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        signed = self.session(request)
        context.setdefault("user", signed[1] if signed else None)
        context.setdefault("csrf", self.signer.csrf(signed[0].nonce) if signed else "")
        context.setdefault("desk_name", self.policy.desk.name)
        context.setdefault("now", self.clock.now())
        body = self.templates.get_template(name).render(request=request, **context)
        return HTMLResponse(body, status_code=status)


def build_app(console: Console) -> FastAPI:
    # Imported here: those modules build on this one (Console, to_login).
    from services.console import actions, api

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def secure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if request.method == "POST" and (length is None or not length.isdigit() or int(length) > MAX_FORM):
            response: Response = HTMLResponse("Form too large or without a length", status_code=413)
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    signed_in = console.session

    @app.exception_handler(SignInFirst)
    async def sign_in_first(request: Request, refused: SignInFirst) -> Response:
        if refused.json:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return to_login(request)

    for_signed_in = console.signed_in_only()

    def cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=console.cfg.cookie_secure
        )

    # -- sign-in -------------------------------------------------------------------------------

    @app.get("/login")
    async def login_form(request: Request, next: str = "/") -> Response:
        nonce = console.signer.login_nonce()
        response = console.page(
            request, "login.html", next=_local_path(next), login_csrf=console.signer.csrf(nonce)
        )
        cookie(response, LOGIN_COOKIE, nonce, 3600)
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", "")).strip().lower()[:64]
        password = str(form.get("password", ""))
        target = _local_path(str(form.get("next", "/")))
        # The token is bound to the signed sign-in cookie itself: both must come from our form.
        nonce = request.cookies.get(LOGIN_COOKIE) or ""
        valid = console.signer.login_nonce_ok(nonce) is not None
        if not valid or not console.signer.csrf_ok(nonce, str(form.get("csrf", ""))):
            return console.page(
                request, "error.html", 403, message="csrf: the sign-in form expired; reload it"
            )
        now = console.clock.now()
        address = request.client.host if request.client else "unknown"
        keys = [f"user:{username}", f"addr:{address}"]
        wait = console.throttle.retry_after(keys, now)
        if wait:
            response = console.page(
                request,
                "login.html",
                429,
                next=target,
                login_csrf=console.signer.csrf(nonce),
                error=f"Too many failed sign-ins: try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        user = verify(console.users, username, password) if username and password else None
        if user is None:
            console.throttle.failed(keys, now)
            return console.page(
                request,
                "login.html",
                401,
                next=target,
                login_csrf=console.signer.csrf(nonce),
                error="username or password: not recognised",
            )
        console.throttle.succeeded([f"user:{username}"])
        signed: Response = RedirectResponse(target, status_code=303)
        cookie(
            signed,
            COOKIE,
            console.signer.issue(user.name, user.role),
            int(console.cfg.session_hours * 3600),
        )
        signed.delete_cookie(LOGIN_COOKIE)
        return signed

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        signed = signed_in(request)
        form = await request.form()
        if signed is not None and not console.signer.csrf_ok(signed[0].nonce, str(form.get("csrf", ""))):
            return console.page(request, "error.html", 403, message="csrf: token missing or invalid")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- pages ---------------------------------------------------------------------------------

    @app.get("/", dependencies=for_signed_in)
    async def now_page(request: Request) -> Response:
        now = console.clock.now()
        return console.page(
            request,
            "now.html",
            rows=console.desk.rows(now),
            oncall=console.desk.oncall(now),
            poll=int(console.cfg.poll_seconds * 1000),
        )

    @app.get("/now/rows", dependencies=console.signed_in_only(json=True))
    async def now_rows(request: Request) -> Response:
        now = console.clock.now()
        return console.page(
            request, "_rows.html", rows=console.desk.rows(now), oncall=console.desk.oncall(now)
        )

    @app.get("/tickets/{number}", dependencies=for_signed_in)
    async def ticket_page(request: Request, number: str, sent: str = "") -> Response:
        ticket = console.desk.store.ticket(number) if TICKET.match(number) else None
        if ticket is None:
            return console.page(request, "error.html", 404, message=f"number: no ticket {number}")
        events = console.desk.store.ticket_events(number)
        now = console.clock.now()
        row = next((r for r in console.desk.rows(now) if r.ticket.number == number), None)
        return console.page(
            request,
            "ticket.html",
            ticket=ticket,
            events=events,
            row=row,
            sent=sent,
            messages=console.desk.messages(events),
            techs=console.policy.techs,
            action_id=secrets.token_hex(16),
            update_max=UPDATE_MAX,
        )

    @app.get("/clients/{client_id}", dependencies=for_signed_in)
    async def client_page(request: Request, client_id: str) -> Response:
        client = console.policy.client(client_id)
        tickets = console.desk.store.client_tickets(client_id)
        if client is None and not tickets:
            return console.page(request, "error.html", 404, message=f"client: no client {client_id}")
        events = console.desk.store.client_events(client_id)
        now = console.clock.now()
        normal, urgent = console.desk.coverage(client_id, now)
        tier = console.policy.tiers.get(client.tier) if client is not None else None
        return console.page(
            request,
            "client.html",
            client=client,
            client_id=client_id,
            tickets=tickets,
            events=events,
            touches=[e for e in reversed(events) if e.kind in ("resolved", "tech_accepted")][:5],
            coverage_normal=normal,
            coverage_urgent=urgent,
            tier=tier,
        )

    @app.get("/oncall", dependencies=for_signed_in)
    async def oncall_page(request: Request) -> Response:
        feeds = {
            t.id: f"/oncall/{t.id}.ics?token={feed_token(console.feed_secret, t.id)}"
            for t in console.policy.techs
        }
        return console.page(
            request,
            "oncall.html",
            oncall=console.desk.oncall(console.clock.now()),
            techs=console.policy.techs,
            feeds=feeds,
            overrides=console.policy.oncall.overrides,
        )

    @app.get("/oncall/{tech}.ics")
    async def oncall_feed(tech: str, token: str = "") -> Response:
        # No session: calendar apps cannot sign in. The per-tech token in the URL is the credential.
        if console.policy.tech(tech) is None or not feed_token_ok(console.feed_secret, tech, token):
            return Response("not found", status_code=404, media_type="text/plain")
        now = console.clock.now()
        upcoming = shifts(console.policy, now - timedelta(weeks=2), now + timedelta(weeks=12))
        body = ical_feed(console.policy, tech, upcoming, stamp=now)
        return Response(body, media_type="text/calendar; charset=utf-8")

    @app.get("/report", dependencies=for_signed_in)
    async def report_page(request: Request) -> Response:
        report = console.report_of(request)
        if isinstance(report, str):
            return console.page(request, "error.html", 422, message=report)
        peak = max((max(day) for day in report.heat), default=0)
        return console.page(
            request,
            "report.html",
            report=report,
            days=DAYS,
            peak=peak,
            start_day=report.start.date().isoformat(),
            end_day=(report.end.date() - timedelta(days=1)).isoformat(),
        )

    @app.get("/report.csv", dependencies=for_signed_in)
    async def report_csv(request: Request) -> Response:
        report = console.report_of(request)
        if isinstance(report, str):
            return Response(report, status_code=422, media_type="text/plain")
        body = to_csv(report)
        name = f"frontdesk-report-{report.start.date()}-{report.end.date()}.csv"
        return Response(
            body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    actions.add_routes(app, console)
    api.add_routes(app, console)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    return app


def to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def _local_path(target: str) -> str:
    """Only our own paths after sign-in: never an open redirect to another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
