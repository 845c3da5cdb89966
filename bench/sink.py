"""A Twilio-compatible counting sink for the end-to-end benchmark: `python -m bench.sink PORT`.

The sandbox is a full fake Twilio (FastAPI, a ledger, status callbacks, faults) and costs about as much
CPU per SMS as the router; with it in the loop the end-to-end figure partly measures our test double.
This sink answers the twilio SDK's Messages.create with a valid message resource and records
To/Body/time for the driver's matching, on httptools (uvicorn's C parser) over a bare asyncio protocol:
a small fraction of a millisecond per request. It posts no status callbacks (see bench/endtoend.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httptools
import msgspec

from services.sandbox import resource

MAX_BODY = 64 * 1024  # an SMS create is a few hundred bytes; anything larger is refused unread
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized"}
_REASONS |= {404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}
_encode = msgspec.json.Encoder().encode


class Sink:
    """What the sink answers (no I/O): Messages.create and list for one account, the driver's ledger."""

    def __init__(self, account_sid: str, auth_token: str, phone_number: str = "") -> None:
        self.account_sid = account_sid
        self.phone_number = phone_number
        self.messages_path = f"/{resource.API_VERSION}/Accounts/{account_sid}/Messages.json"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}".encode()
        self.sent: list[dict[str, Any]] = []  # the public message resources, oldest first
        self.times: list[str] = []  # when each was received (ISO 8601), same order as `sent`
        self.created = 0

    def answer(self, method: str, url: str, authorization: bytes, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one request."""
        path, _, query = url.partition("?")
        if path == "/api/messages":
            if method == "DELETE":
                self.sent.clear()
                self.times.clear()
                return 204, b""
            if method == "GET":
                brief = [
                    {"to": m["to"], "body": m["body"], "sid": m["sid"], "time": t}
                    for m, t in zip(self.sent, self.times, strict=True)
                ]
                return 200, _encode(brief)
            return 405, b""
        if path == "/api/count" and method == "GET":
            return 200, _encode({"created": self.created})  # cheap to poll, unlike the whole ledger
        if path == "/healthz":
            return 200, b'{"status":"ok"}'
        if path != self.messages_path:
            return 404, _encode(resource.error(20404, 404, path=path))
        # Constant-time comparison: the same check Twilio makes on the account's credentials.
        if not hmac.compare_digest(authorization, self._authorization):
            return 401, _encode(resource.error(20003, 401))
        if method == "POST":
            return self._create({k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()})
        if method == "GET":
            return 200, self._list(parse_qs(query))
        return 405, b""

    def _create(self, form: dict[str, str]) -> tuple[int, bytes]:
        to, body = form.get("To", ""), form.get("Body", "")
        service_sid = form.get("MessagingServiceSid") or None
        from_ = form.get("From") or (self.phone_number if service_sid else "")
        for missing, code in ((to, 21604), (from_, 21606), (body, 21602)):
            if not missing:
                return 400, _encode(resource.error(code, 400))
        now = datetime.now(UTC)
        self.created += 1
        record = resource.message(
            account_sid=self.account_sid,
            message_sid=resource.sid("SM"),
            to=to,
            from_=from_,
            body=body,
            status="queued",
            created=now,
            messaging_service_sid=service_sid,
        )
        self.sent.append(record)
        self.times.append(now.isoformat())
        return 201, _encode(record)

    def _list(self, query: dict[str, list[str]]) -> bytes:
        """Newest first, filtered by To and From: what the notifier's reconciliation asks for."""
        to, from_ = query.get("To", [None])[-1], query.get("From", [None])[-1]
        size = int(query.get("PageSize", ["50"])[-1] or 50)
        chosen = [
            m for m in self.sent if (to is None or m["to"] == to) and (from_ is None or m["from"] == from_)
        ]
        return _encode(resource.page(chosen, self.messages_path, size))


def response(status: int, payload: bytes, *, keep_alive: bool) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Length: {len(payload)}\r\n"
    if payload:
        head += "Content-Type: application/json\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + payload


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed by httptools' callbacks."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.authorization = b""
        self.body: list[bytes] = []
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse(400)

    def _refuse(self, status: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response(status, b"", keep_alive=False))
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.authorization, self.body, self.size = b"", b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.authorization = value

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self._refuse(413)
            raise httptools.HttpParserError("body too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        method = self.parser.get_method().decode()
        status, payload = self.sink.answer(method, self.url.decode(), self.authorization, b"".join(self.body))
        keep_alive = self.parser.should_keep_alive()
        self.transport.write(response(status, payload, keep_alive=keep_alive))
        if not keep_alive:
            self.transport.close()


async def listen(sink: Sink, port: int) -> asyncio.Server:
    """Serve `sink` on 127.0.0.1:`port` (0: any free port, see the server's sockets)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Connection(sink), "127.0.0.1", port)


async def serve(sink: Sink, port: int, stop: asyncio.Event) -> None:
    async with await listen(sink, port):
        await stop.wait()


async def main(port: int) -> None:
    sink = Sink(
        os.environ.get("FRONTDESK_TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        os.environ.get("FRONTDESK_TWILIO_AUTH_TOKEN", ""),
        os.environ.get("FRONTDESK_SANDBOX_PHONE_NUMBER", ""),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await serve(sink, port, stop)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
