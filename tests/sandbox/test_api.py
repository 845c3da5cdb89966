"""The Twilio REST look-alike, exercised through the real twilio SDK (sync and async clients)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from services.sandbox.app import Sandbox
from tests.sandbox.conftest import PUBLIC, TOKEN, VoiceApp
from tests.support import until

ACCOUNT = "AC00000000000000000000000000000000"
SAY_HI = "<Response><Say>Hi</Say></Response>"


def sync_client(sandbox: Sandbox, token: str = TOKEN) -> Client:
    client = Client(ACCOUNT, token)
    client.api.base_url = sandbox.url  # every v2010 URL is built from the Api domain's base_url
    return client


async def test_sync_sdk_round_trip(sandbox: Sandbox) -> None:
    client = sync_client(sandbox)
    # The sync SDK blocks; the sandbox lives on this loop, so call it from a thread.
    sent = await asyncio.to_thread(
        client.messages.create, to="+15005550006", from_="+13125550100", body="Ticket FD-7 received"
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", sent.sid)
    assert sent.status == "queued" and sent.body == "Ticket FD-7 received"
    assert sent.date_created is not None and sent.date_created.tzinfo is not None
    fetched = await asyncio.to_thread(client.messages(sent.sid).fetch)
    assert fetched.to == "+15005550006"
    listed = await asyncio.to_thread(
        client.messages.list, to="+15005550006", date_sent_after=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert [item.sid for item in listed] == [sent.sid]
    assert await asyncio.to_thread(client.messages.list, to="+19999999999") == []
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        messages = (await http.get("/api/messages")).json()
    assert [(m["sid"], m["to"], m["from"], m["body"]) for m in messages] == [
        (sent.sid, "+15005550006", "+13125550100", "Ticket FD-7 received")
    ]


async def test_async_sdk_round_trip_with_signed_callbacks(sandbox: Sandbox, voice_app: VoiceApp) -> None:
    http_client = AsyncTwilioHttpClient()
    client = Client(ACCOUNT, TOKEN, http_client=http_client)
    client.api.base_url = sandbox.url
    try:
        sent = await client.messages.create_async(
            to="+15005550006",
            messaging_service_sid="MG00000000000000000000000000000000",
            body="On my way",
            status_callback=f"{PUBLIC}/twilio/sms/status",
        )
    finally:
        await http_client.close()
    assert sent.status == "queued" and sent.messaging_service_sid.startswith("MG")
    await until(
        lambda: len([s for s in voice_app.seen if s.path == "/twilio/sms/status"]) == 2,
        5,
        "two status callbacks",
    )
    callbacks = [s for s in voice_app.seen if s.path == "/twilio/sms/status"]
    assert all(s.valid for s in callbacks)
    assert [s.params["MessageStatus"] for s in callbacks] == ["sent", "delivered"]
    assert callbacks[0].params["MessageSid"] == sent.sid
    assert callbacks[0].params["AccountSid"] == ACCOUNT
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        messages = (await http.get("/api/messages")).json()
    assert [(m["sid"], m["status"]) for m in messages] == [(sent.sid, "delivered")]


async def test_wrong_credentials_are_refused(sandbox: Sandbox) -> None:
    client = sync_client(sandbox, token="wrong")
    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="x")
    assert caught.value.status == 401 and caught.value.code == 20003
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        bare = await http.post(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", data={"To": "+1"})
        assert bare.status_code == 401
        assert bare.json()["code"] == 20003 and set(bare.json()) == {"code", "message", "more_info", "status"}
        assert (await http.get("/api/messages")).json() == []


@pytest.mark.parametrize("code", [21211, 21614, 21610])
async def test_number_faults_raise_twilio_errors(sandbox: Sandbox, code: int) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        armed = await http.post("/api/faults", json={"number": "+15005550001", "error_code": code})
        assert armed.status_code == 200
    client = sync_client(sandbox)
    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(client.messages.create, to="+15005550001", from_="+13125550100", body="x")
    assert caught.value.code == code and caught.value.status == 400
    # Other numbers are unaffected.
    sent = await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="y")
    assert sent.status == "queued"


async def test_unreachable_handset_ends_undelivered(sandbox: Sandbox, voice_app: VoiceApp) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        await http.post("/api/faults", json={"number": "+15005550009", "error_code": 30003})
        client = sync_client(sandbox)
        sent = await asyncio.to_thread(
            client.messages.create,
            to="+15005550009",
            from_="+13125550100",
            body="x",
            status_callback=f"{PUBLIC}/twilio/sms/status",
        )
        assert sent.status == "queued"
        await until(lambda: len(voice_app.seen) == 2, 5, "two webhooks")
        assert [s.params["MessageStatus"] for s in voice_app.seen] == ["sent", "undelivered"]
        assert voice_app.seen[1].params["ErrorCode"] == "30003"
        assert (await http.post("/api/faults", json={"number": "+1", "error_code": 12345})).status_code == 422


async def test_burst_answers_statuses_then_recovers(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        await http.post("/api/faults", json={"burst": [429, 500, 500]})
    client = sync_client(sandbox)
    statuses = []
    for _ in range(3):
        with pytest.raises(TwilioRestException) as caught:
            await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="x")
        statuses.append(caught.value.status)
    assert statuses == [429, 500, 500]
    sent = await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="x")
    assert sent.status == "queued"


async def test_lost_response_creates_the_message_then_answers_502(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        armed = await http.post("/api/faults", json={"lost_responses": 1})
        assert armed.json()["lost_responses"] == 1
    client = sync_client(sandbox)
    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="a")
    assert caught.value.status == 502
    # Twilio has it even though the sender never heard: the list shows it, and only once.
    listed = await asyncio.to_thread(client.messages.list, to="+15005550006")
    assert [m.body for m in listed] == ["a"]
    sent = await asyncio.to_thread(client.messages.create, to="+15005550006", from_="+13125550100", body="b")
    assert sent.status == "queued"


async def test_delete_faults_and_messages_reset(sandbox: Sandbox) -> None:
    client = sync_client(sandbox)
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        await http.post("/api/faults", json={"number": "+15005550001", "error_code": 21211, "burst": [500]})
        assert (await http.delete("/api/faults")).status_code == 204
        sent = await asyncio.to_thread(client.messages.create, to="+15005550001", from_="+1312555", body="x")
        assert sent.status == "queued"
        assert len((await http.get("/api/messages")).json()) == 1
        assert (await http.delete("/api/messages")).status_code == 204
        assert (await http.get("/api/messages")).json() == []


async def test_outbound_call_is_recorded(sandbox: Sandbox) -> None:
    client = sync_client(sandbox)
    call = await asyncio.to_thread(client.calls.create, to="+15005550006", from_="+13125550100", twiml=SAY_HI)
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid) and call.status == "queued"
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        calls = (await http.get("/api/calls")).json()
    assert [(c["sid"], c["to"], c["twiml"]) for c in calls] == [(call.sid, "+15005550006", SAY_HI)]
