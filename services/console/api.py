"""JSON beside every page, for scripts and tests: the same sign-in, the same read model."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.console.web import TICKET, Console

_json = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status, media_type="application/json")


def add_routes(app: FastAPI, console: Console) -> None:
    signed = console.signed_in_only(json=True)

    @app.get("/api/tickets", dependencies=signed)
    async def api_tickets(request: Request, state: str | None = None) -> Response:
        if state not in (None, "open", "queued", "dispatched", "accepted", "resolved"):
            return JSONResponse(
                {"error": "state: open, queued, dispatched, accepted or resolved"}, status_code=422
            )
        now = console.clock.now()
        clocks = {r.ticket.number: r.clock for r in console.desk.rows(now)}
        tickets = console.desk.store.tickets(state=state)
        return json_response([{"ticket": t, "clock": clocks.get(t.number)} for t in tickets])

    @app.get("/api/tickets/{number}", dependencies=signed)
    async def api_ticket(request: Request, number: str) -> Response:
        ticket = console.desk.store.ticket(number) if TICKET.match(number) else None
        if ticket is None:
            return JSONResponse({"error": f"number: no ticket {number}"}, status_code=404)
        events = console.desk.store.ticket_events(number)
        return json_response(
            {"ticket": ticket, "timeline": events, "messages": console.desk.messages(events)}
        )

    @app.get("/api/oncall", dependencies=signed)
    async def api_oncall(request: Request) -> Response:
        return json_response(console.desk.oncall(console.clock.now()))

    @app.get("/api/report", dependencies=signed)
    async def api_report(request: Request) -> Response:
        report = console.report_of(request)
        if isinstance(report, str):
            return JSONResponse({"error": report}, status_code=422)
        return json_response(report)
