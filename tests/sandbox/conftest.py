"""Fixtures: a tiny signature-checking app standing in for intake_voice, and a sandbox aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from services.common.http import HttpServer
from services.sandbox.app import Sandbox

TOKEN = "test-auth-token"
PUBLIC = "https://frontdesk.example.com"

MENU = (
    '<Response><Gather action="/twilio/voice/menu" numDigits="1" input="dtmf speech">'
    "<Say>Press 1 to leave a message, 9 for the on-call tech.</Say></Gather>"
    "<Say>Goodbye</Say><Hangup/></Response>"
)
RECORD = (
    '<Response><Say>Leave a message.</Say><Record action="/twilio/voice/recorded" maxLength="120" '
    'recordingStatusCallback="/twilio/voice/recording" transcribe="true" '
    'transcribeCallback="/twilio/voice/transcription"/></Response>'
)


class Seen(msgspec.Struct):
    path: str
    query: str
    params: dict[str, str]
    valid: bool


class VoiceApp:
    """Answers like intake_voice would and remembers every (signature-checked) request."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.validator = RequestValidator(TOKEN)
        self.app = FastAPI()
        self.app.add_api_route("/{path:path}", self.handle, methods=["POST"])
        self.server = HttpServer(self.app, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def handle(self, path: str, request: Request) -> Response:
        params = {key: str(value) for key, value in (await request.form()).items()}
        # Signed over the public URL (what Twilio was configured with), not the loopback one.
        query = f"?{request.url.query}" if request.url.query else ""
        signed_url = f"{PUBLIC}/{path}{query}"
        valid = self.validator.validate(signed_url, params, request.headers.get("X-Twilio-Signature", ""))
        self.seen.append(Seen("/" + path, request.url.query, params, valid))
        if not valid:
            return Response("bad signature", status_code=403)
        return Response(self.answer("/" + path, params), media_type="application/xml")

    def answer(self, path: str, params: dict[str, str]) -> str:
        if path == "/twilio/voice":
            return MENU
        if path == "/twilio/voice/menu":
            choice = params.get("Digits") or params.get("SpeechResult", "")
            if choice in ("1", "message"):
                return RECORD
            if choice == "9":
                dial = '<Dial action="/twilio/voice/dialed" timeout="20">+13125550199</Dial>'
                return f"<Response>{dial}</Response>"
            return "<Response><Redirect>/twilio/voice?retry=1</Redirect></Response>"
        if path == "/twilio/voice/dialed":
            return "<Response><Say>Nobody answered.</Say><Hangup/></Response>"
        if path == "/twilio/voice/recorded":
            return "<Response><Say>Thanks, goodbye.</Say><Hangup/></Response>"
        if path == "/twilio/sms":
            return f"<Response><Message>Got: {params.get('Body', '')}</Message></Response>"
        return "<Response/>"

    def paths(self) -> list[str]:
        return [item.path + (f"?{item.query}" if item.query else "") for item in self.seen]


@pytest.fixture
async def voice_app() -> AsyncIterator[VoiceApp]:
    app = VoiceApp()
    await app.server.start()
    try:
        yield app
    finally:
        await app.server.stop()


@pytest.fixture
async def sandbox(voice_app: VoiceApp) -> AsyncIterator[Sandbox]:
    configured = Sandbox.on_free_ports(voice_app.url, public_base=PUBLIC, auth_token=TOKEN)
    async with configured as running:
        yield running


def params_of(exchange: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = exchange["params"]
    return params
