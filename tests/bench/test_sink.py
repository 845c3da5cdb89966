"""The counting sink answers the real twilio SDK as Twilio would, and refuses what Twilio would refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client as TwilioClient

from bench.sink import MAX_BODY, Sink, listen

ACCOUNT = "AC00000000000000000000000000000000"
TOKEN = "sink-token"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    sink = Sink(ACCOUNT, TOKEN, "+13125550199")
    server = await listen(sink, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield sink, f"http://127.0.0.1:{port}"


def twilio(base: str, token: str = TOKEN) -> tuple[TwilioClient, AsyncTwilioHttpClient]:
    http = AsyncTwilioHttpClient(timeout=5)
    client = TwilioClient(ACCOUNT, token, http_client=http)
    client.api.base_url = base
    return client, http


async def test_the_sdk_creates_and_lists_messages_and_the_driver_reads_the_ledger(
    sink: tuple[Sink, str],
) -> None:
    counting, base = sink
    client, http = twilio(base)
    try:
        created = await client.messages.create_async(
            to="+13125550123", from_="+13125550199", body="E2EM000001 down"
        )
        assert created.sid.startswith("SM") and created.status == "queued" and created.to == "+13125550123"
        other = await client.messages.create_async(to="+13125550999", messaging_service_sid="MG1", body="hi")
        assert other.from_ == "+13125550199"  # a messaging service sends from the account's number
        listed = await client.messages.list_async(to="+13125550123", from_="+13125550199", limit=50)
        assert [m.sid for m in listed] == [created.sid] and listed[0].body == "E2EM000001 down"
    finally:
        await http.close()
    async with httpx.AsyncClient(base_url=base) as driver:
        ledger = (await driver.get("/api/messages")).json()
        assert [(m["to"], m["body"]) for m in ledger] == [
            ("+13125550123", "E2EM000001 down"),
            ("+13125550999", "hi"),
        ]
        assert (await driver.get("/api/count")).json() == {"created": 2}
        assert (await driver.delete("/api/messages")).status_code == 204
        assert (await driver.get("/api/messages")).json() == []
    assert counting.created == 2  # the count survives a cleared ledger: doubled sends stay visible


async def refusal(base: str, token: str, body: str) -> TwilioRestException:
    client, http = twilio(base, token=token)
    try:
        with pytest.raises(TwilioRestException) as refused:
            await client.messages.create_async(to="+13125550123", from_="+13125550199", body=body)
    finally:
        await http.close()
    return refused.value


async def test_wrong_credentials_missing_fields_and_oversized_bodies_are_refused(
    sink: tuple[Sink, str],
) -> None:
    counting, base = sink
    wrong = await refusal(base, "wrong", "x")
    assert wrong.status == 401 and wrong.code == 20003
    missing = await refusal(base, TOKEN, "")
    assert missing.status == 400 and missing.code == 21602
    async with httpx.AsyncClient(base_url=base) as raw:
        big = await raw.post(counting.messages_path, content=b"x" * (MAX_BODY + 1), auth=(ACCOUNT, TOKEN))
        assert big.status_code == 413
        assert (await raw.get("/elsewhere")).status_code == 404
    assert counting.created == 0
