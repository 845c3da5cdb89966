"""The sandbox HTTP surface: Twilio REST look-alike, inbound drivers and the inspection/control API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.common.clock import Clock
from services.sandbox import conversation, resource
from services.sandbox import page as pages
from services.sandbox.caller import (
    Exchange,
    InboundCall,
    InboundSms,
    Webhooks,
    deliver_sms,
    drive_call,
    exchange_list,
)
from services.sandbox.config import SandboxConfig

T = TypeVar("T")

BURST_ERRORS = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    number: str | None = None
    error_code: int | None = None
    burst: list[int] = []
    # The next N sends are created, then answered 502: the response lost after Twilio accepted,
    # the case where a naive retry sends a second SMS.
    lost_responses: int = 0


class Ledger:
    """Everything the sandbox saw, newest last, plus the faults armed by tests."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.emails: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.number_faults: dict[str, int] = {}
        self.burst: deque[int] = deque()
        self.lost_responses = 0
        self.callbacks: list[dict[str, Any]] = []  # status callbacks we posted (for inspection)

    def message(self, message_sid: str) -> dict[str, Any] | None:
        return next((item for item in self.messages if item["sid"] == message_sid), None)


def _twilio_error(code: int, status: int, **fields: str) -> JSONResponse:
    return JSONResponse(resource.error(code, status, **fields), status_code=status)


async def _decoded(request: Request, type_: type[T]) -> T | Response:
    """The JSON body as `type_`, or the 422 that says what is wrong with it (not JSON, or which field)."""
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except msgspec.DecodeError as exc:  # ValidationError is one
        return JSONResponse({"error": str(exc)}, status_code=422)


def _listing(records: list[dict[str, Any]]) -> Callable[[], Awaitable[Response]]:
    """A GET of one of the ledger's lists, as recorded (the tests and the page read them)."""

    async def listed() -> Response:
        return JSONResponse(records)

    return listed


def _parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build(
    cfg: SandboxConfig,
    ledger: Ledger,
    clock: Clock,
    http: httpx.AsyncClient,
    tasks: set[asyncio.Task[None]],
) -> FastAPI:
    app = FastAPI(title="Frontdesk sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    token = cfg.auth_token.reveal()
    hooks = Webhooks(cfg, http)
    prefix = f"/{resource.API_VERSION}/Accounts/{{account}}"

    def gate(request: Request, account: str) -> JSONResponse | None:
        """Burst faults first (they model Twilio's edge), then HTTP Basic auth like Twilio."""
        if ledger.burst:
            status = ledger.burst.popleft()
            code, message = BURST_ERRORS.get(status, (20000 + status, "Error"))
            body = {"code": code, "message": message, "more_info": "", "status": status}
            return JSONResponse(body, status_code=status)
        header = request.headers.get("authorization", "")
        user = password = ""
        if header.lower().startswith("basic "):
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user != cfg.account_sid or password != token:
            response = _twilio_error(20003, 401)
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if account != cfg.account_sid:
            return _twilio_error(20404, 404, path=request.url.path)
        return None

    def spawn(work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def report(url: str, record: dict[str, Any], error_code: int | None) -> None:
        # Twilio reports progress asynchronously; the sender must not depend on ordering with the 201.
        statuses = ["sent", "undelivered"] if error_code else ["sent", "delivered"]
        for status in statuses:
            await asyncio.sleep(0.01)
            record["status"] = status
            params = {
                "MessageSid": record["sid"],
                "SmsSid": record["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
                "To": record["to"],
                "From": record["from"],
                "AccountSid": cfg.account_sid,
                "ApiVersion": resource.API_VERSION,
            }
            if status == "undelivered" and error_code:
                params["ErrorCode"] = str(error_code)
            # Signed over the URL the sender gave; delivered to webhook_base when it is our public URL.
            exchange = await hooks.post(url, params)
            outcome = exchange.status
            ledger.callbacks.append({"url": url, "params": params, "status": outcome})

    @app.post(prefix + "/Messages.json")
    async def send_message(account: str, request: Request) -> Response:
        if (refused := gate(request, account)) is not None:
            return refused
        form = {key: str(value) for key, value in (await request.form()).items()}
        to = form.get("To", "")
        service_sid = form.get("MessagingServiceSid") or None
        from_ = form.get("From") or (cfg.phone_number if service_sid else "")
        if not to:
            return _twilio_error(21604, 400)
        if not from_:
            return _twilio_error(21606, 400)
        if not form.get("Body") and not form.get("MediaUrl"):
            return _twilio_error(21602, 400)
        fault = ledger.number_faults.get(to)
        if fault is not None and fault not in resource.DELIVERY_ERRORS:
            return _twilio_error(fault, 400, to=to)
        created = clock.now()
        record = resource.message(
            account_sid=cfg.account_sid,
            message_sid=resource.sid("SM"),
            to=to,
            from_=from_,
            body=form.get("Body", ""),
            status="queued",
            created=created,
            messaging_service_sid=service_sid,
        )
        answer = dict(record)
        record["_created"] = created
        record["_status_callback"] = form.get("StatusCallback", "")
        if fault is not None:
            record["error_code"] = fault
            record["error_message"] = resource.ERRORS[fault]
        ledger.messages.append(record)
        if record["_status_callback"]:
            spawn(report(record["_status_callback"], record, fault))
        elif fault is not None:
            record["status"] = "undelivered"
        if ledger.lost_responses:
            ledger.lost_responses -= 1
            return _twilio_error(20502, 502)
        return JSONResponse(answer, status_code=201)

    @app.get(prefix + "/Messages.json")
    async def list_messages(account: str, request: Request) -> Response:
        if (refused := gate(request, account)) is not None:
            return refused
        query = request.query_params
        chosen = []
        for record in ledger.messages:
            if "To" in query and record["to"] != query["To"]:
                continue
            if "From" in query and record["from"] != query["From"]:
                continue
            created: datetime = record["_created"]
            try:
                if "DateSent>" in query and created < _parse_instant(query["DateSent>"]):
                    continue
                if "DateSent<" in query and created > _parse_instant(query["DateSent<"]):
                    continue
                if "DateSent" in query and created.date() != _parse_instant(query["DateSent"]).date():
                    continue
            except ValueError:
                return _twilio_error(20001, 400)
            chosen.append(_public(record))
        return JSONResponse(resource.page(chosen, request.url.path, int(query.get("PageSize", "50"))))

    @app.get(prefix + "/Messages/{message_sid}.json")
    async def fetch_message(account: str, message_sid: str, request: Request) -> Response:
        if (refused := gate(request, account)) is not None:
            return refused
        record = ledger.message(message_sid)
        if record is None:
            return _twilio_error(20404, 404, path=request.url.path)
        return JSONResponse(_public(record))

    @app.post(prefix + "/Calls.json")
    async def create_call(account: str, request: Request) -> Response:
        if (refused := gate(request, account)) is not None:
            return refused
        form = {key: str(value) for key, value in (await request.form()).items()}
        if not form.get("To"):
            return _twilio_error(21201, 400)
        fault = ledger.number_faults.get(form["To"])
        if fault is not None and fault not in resource.DELIVERY_ERRORS:
            return _twilio_error(fault, 400, to=form["To"])
        record = resource.call(
            account_sid=cfg.account_sid,
            call_sid=resource.sid("CA"),
            to=form["To"],
            from_=form.get("From", cfg.phone_number),
            created=clock.now(),
        )
        ledger.calls.append({**record, "url": form.get("Url", ""), "twiml": form.get("Twiml", "")})
        return JSONResponse(record, status_code=201)

    # -- inbound drivers -------------------------------------------------------------------
    async def text_in(sms: InboundSms) -> Exchange:
        exchange = await deliver_sms(hooks, sms)
        ledger.webhooks.append(
            {"kind": "sms", "time": clock.now().isoformat(), "exchanges": exchange_list([exchange])}
        )
        return exchange

    async def call_in(call: InboundCall) -> list[dict[str, Any]]:
        started = clock.now().isoformat()  # the page shows when the phone rang
        exchanges = exchange_list(await drive_call(hooks, call))
        ledger.webhooks.append({"kind": "call", "time": started, "exchanges": exchanges})
        return exchanges

    @app.post("/api/inbound/sms")
    async def inbound_sms(request: Request) -> Response:
        sms = await _decoded(request, InboundSms)
        if isinstance(sms, Response):
            return sms
        exchange = await text_in(sms)
        return JSONResponse({"status": exchange.status, "twiml": exchange.twiml, "params": exchange.params})

    @app.post("/api/inbound/call")
    async def inbound_call(request: Request) -> Response:
        call = await _decoded(request, InboundCall)
        if isinstance(call, Response):
            return call
        return JSONResponse(await call_in(call))

    # -- control and inspection ------------------------------------------------------------
    @app.post("/api/faults")
    async def add_fault(request: Request) -> Response:
        fault = await _decoded(request, Fault)
        if isinstance(fault, Response):
            return fault
        if fault.number is not None:
            if fault.error_code not in resource.SEND_ERRORS | resource.DELIVERY_ERRORS:
                return JSONResponse(
                    {"error": "error_code: expected 21211, 21610, 21614 or 30003"}, status_code=422
                )
            ledger.number_faults[fault.number] = fault.error_code
        ledger.burst.extend(fault.burst)
        ledger.lost_responses += max(0, fault.lost_responses)
        return JSONResponse(
            {
                "numbers": ledger.number_faults,
                "burst": list(ledger.burst),
                "lost_responses": ledger.lost_responses,
            }
        )

    @app.delete("/api/faults")
    async def clear_faults() -> Response:
        ledger.number_faults.clear()
        ledger.burst.clear()
        ledger.lost_responses = 0
        return Response(status_code=204)

    @app.get("/api/messages")
    async def messages() -> Response:
        return JSONResponse([conversation.brief(record) for record in ledger.messages])

    @app.delete("/api/messages")
    async def clear_messages() -> Response:
        ledger.messages.clear()
        ledger.callbacks.clear()
        return Response(status_code=204)

    app.add_api_route("/api/emails", _listing(ledger.emails), methods=["GET"], name="/api/emails")

    @app.delete("/api/emails")
    async def clear_emails() -> Response:
        ledger.emails.clear()
        return Response(status_code=204)

    for path, records in (
        ("/api/calls", ledger.calls),
        ("/api/webhooks", ledger.webhooks),
        ("/api/callbacks", ledger.callbacks),
    ):
        app.add_api_route(path, _listing(records), methods=["GET"], name=path)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    pages.mount(app, cfg, ledger, text_in, call_in)
    return app


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}
