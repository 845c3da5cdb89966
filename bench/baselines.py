"""Bare baselines run as their own processes: an aiosmtpd sink that only answers 250, and a FastAPI
endpoint returning fixed TwiML. Same process model as the real services, so the ratio is fair."""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def smtp_sink(port: int) -> None:
    class Sink:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            return "250 2.0.0 OK"

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), data_size_limit=26214400), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def http_twiml(port: int) -> None:
    app = FastAPI()

    async def twiml(request: Request) -> Response:
        await request.form()
        return Response(TWIML, media_type="application/xml")

    for path in ("/twilio/sms", "/twilio/voice"):
        app.add_api_route(path, twiml, methods=["POST"])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "smtp":
        asyncio.run(smtp_sink(port))
    else:
        http_twiml(port)
