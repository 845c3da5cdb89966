"""Desk actions from the ticket page: checked (session, CSRF, role, fields), then published as commands."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from services.console.web import TICKET, UPDATE_MAX, Console, to_login
from services.contracts import subjects as s
from services.contracts.commands import DeskCommand, ReassignTicket, ResolveTicket, SendClientUpdate

ACTION_ID = re.compile(r"^[0-9a-f]{32}$")


def add_routes(app: FastAPI, console: Console) -> None:
    signed_in = console.session

    async def act(
        request: Request, number: str, make: Callable[[str, str, dict[str, str]], DeskCommand | str]
    ) -> Response:
        signed = signed_in(request)
        if signed is None:
            return to_login(request)
        session, user = signed
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not console.signer.csrf_ok(session.nonce, form.get("csrf")):
            return console.page(request, "error.html", 403, message="csrf: token missing or invalid")
        if not user.may_act:
            return console.page(
                request, "error.html", 403, message=f"role: {user.role} may not act on tickets"
            )
        if not TICKET.match(number) or console.desk.store.ticket(number) is None:
            return console.page(request, "error.html", 404, message=f"number: no ticket {number}")
        action_id = form.get("action_id", "")
        if not ACTION_ID.match(action_id):
            return console.page(request, "error.html", 422, message="action_id: 32 hex digits expected")
        command = make(action_id, user.name, form)
        if isinstance(command, str):
            return console.page(request, "error.html", 422, message=command)
        action = request.url.path.rsplit("/", 1)[1]
        await console.publish(s.desk_subject(action), command)
        return RedirectResponse(f"/tickets/{number}?sent={action}", status_code=303)

    @app.post("/tickets/{number}/reassign")
    async def reassign(request: Request, number: str) -> Response:
        def make(action_id: str, user: str, form: dict[str, str]) -> DeskCommand | str:
            tech = form.get("tech", "")
            if console.policy.tech(tech) is None:
                return f"tech: no tech {tech!r}"
            return ReassignTicket(
                id=action_id, ticket_number=number, tech=tech, user=user, requested_at=console.clock.now()
            )

        return await act(request, number, make)

    @app.post("/tickets/{number}/resolve")
    async def resolve(request: Request, number: str) -> Response:
        def make(action_id: str, user: str, form: dict[str, str]) -> DeskCommand | str:
            return ResolveTicket(
                id=action_id, ticket_number=number, user=user, requested_at=console.clock.now()
            )

        return await act(request, number, make)

    @app.post("/tickets/{number}/update")
    async def update(request: Request, number: str) -> Response:
        def make(action_id: str, user: str, form: dict[str, str]) -> DeskCommand | str:
            text = form.get("text", "").strip()
            if not text or len(text) > UPDATE_MAX:
                return f"text: 1 to {UPDATE_MAX} characters"
            return SendClientUpdate(
                id=action_id, ticket_number=number, user=user, text=text, requested_at=console.clock.now()
            )

        return await act(request, number, make)
