"""Inbound drivers: signed SMS and call webhooks that follow the app's TwiML like Twilio."""

from __future__ import annotations

from typing import Any

import httpx

from services.sandbox.app import Sandbox
from tests.sandbox.conftest import PUBLIC, VoiceApp


async def call(sandbox: Sandbox, **body: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        answer = await http.post("/api/inbound/call", json={"from": "+15551230001", **body})
    assert answer.status_code == 200
    exchanges: list[dict[str, Any]] = answer.json()
    return exchanges


async def test_inbound_sms_is_signed_and_twiml_returned(sandbox: Sandbox, voice_app: VoiceApp) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        answer = await http.post(
            "/api/inbound/sms",
            json={"from": "+15551230001", "body": "STOP", "media_urls": ["https://example.com/a.png"]},
        )
        webhooks = (await http.get("/api/webhooks")).json()
    assert answer.status_code == 200
    assert answer.json()["status"] == 200
    assert answer.json()["twiml"] == "<Response><Message>Got: STOP</Message></Response>"
    [seen] = voice_app.seen
    assert seen.valid and seen.path == "/twilio/sms"
    assert seen.params["From"] == "+15551230001" and seen.params["To"] == "+13125550100"
    assert seen.params["Body"] == "STOP" and seen.params["NumMedia"] == "1"
    assert seen.params["MediaUrl0"] == "https://example.com/a.png"
    assert seen.params["MediaContentType0"] == "image/png"
    assert seen.params["MessageSid"].startswith("SM") and seen.params["AccountSid"].startswith("AC")
    assert webhooks[0]["kind"] == "sms" and webhooks[0]["exchanges"][0]["url"] == f"{PUBLIC}/twilio/sms"


async def test_call_gathers_redirects_records_then_hangs_up(sandbox: Sandbox, voice_app: VoiceApp) -> None:
    exchanges = await call(sandbox, digits=["2", "1"], record_seconds=7, transcript="Heater broken")
    assert [e["url"].removeprefix(PUBLIC) for e in exchanges] == [
        "/twilio/voice",
        "/twilio/voice/menu",
        "/twilio/voice?retry=1",
        "/twilio/voice/menu",
        "/twilio/voice/recorded",
        "/twilio/voice/recording",
        "/twilio/voice/transcription",
        "/twilio/voice/status",
    ]
    assert all(e["status"] == 200 for e in exchanges)
    assert all(seen.valid for seen in voice_app.seen)  # query strings are part of the signed URL
    assert voice_app.paths()[2] == "/twilio/voice?retry=1"
    first, menu = exchanges[0]["params"], exchanges[1]["params"]
    assert first["CallStatus"] == "ringing" and first["Direction"] == "inbound"
    assert first["From"] == "+15551230001" and first["To"] == "+13125550100"
    assert menu["Digits"] == "2" and menu["CallSid"] == first["CallSid"]
    assert exchanges[3]["params"]["Digits"] == "1"
    recorded = exchanges[4]["params"]
    assert recorded["RecordingDuration"] == "7" and recorded["RecordingSid"].startswith("RE")
    assert exchanges[5]["params"]["RecordingStatus"] == "completed"
    assert exchanges[5]["params"]["RecordingSid"] == recorded["RecordingSid"]
    transcription = exchanges[6]["params"]
    assert transcription["TranscriptionText"] == "Heater broken"
    assert transcription["TranscriptionStatus"] == "completed"
    assert exchanges[7]["params"]["CallStatus"] == "completed"
    assert "<Record" in exchanges[3]["twiml"]


async def test_caller_hangs_up_when_digits_run_out(sandbox: Sandbox) -> None:
    exchanges = await call(sandbox)
    assert [e["url"].removeprefix(PUBLIC) for e in exchanges] == ["/twilio/voice", "/twilio/voice/status"]
    assert exchanges[1]["params"]["CallStatus"] == "completed"


async def test_speech_answers_a_speech_gather(sandbox: Sandbox) -> None:
    exchanges = await call(sandbox, speech="message", hangup_after=2)
    assert exchanges[1]["params"]["SpeechResult"] == "message"
    assert [e["url"].removeprefix(PUBLIC) for e in exchanges] == [
        "/twilio/voice",
        "/twilio/voice/menu",
        "/twilio/voice/status",
    ]


async def test_dial_reports_no_answer_or_completed(sandbox: Sandbox) -> None:
    missed = await call(sandbox, digits=["9"])
    assert missed[2]["url"] == f"{PUBLIC}/twilio/voice/dialed"
    assert missed[2]["params"]["DialCallStatus"] == "no-answer"
    answered = await call(sandbox, digits=["9"], dial_answered=True)
    assert answered[2]["params"]["DialCallStatus"] == "completed"
    assert answered[-1]["url"] == f"{PUBLIC}/twilio/voice/status"


async def test_steps_are_bounded_for_a_redirect_loop(sandbox: Sandbox) -> None:
    # "5" is not a menu choice: the app redirects back to the menu forever.
    exchanges = await call(sandbox, digits=["5"] * 50)
    assert len(exchanges) == sandbox.cfg.max_call_steps + 1  # plus the final status callback
    assert exchanges[-1]["params"]["CallStatus"] == "completed"


async def test_invalid_driver_request_is_a_422(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        answer = await http.post("/api/inbound/call", json={"digits": ["1"]})
        garbled = await http.post("/api/inbound/sms", content=b"{not json")
    assert answer.status_code == 422 and "from" in answer.json()["error"]
    assert garbled.status_code == 422 and "JSON" in garbled.json()["error"]
