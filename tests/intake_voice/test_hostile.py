"""Hostile webhooks: oversized bodies refused unread, signed junk answered 4xx, nothing published."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from services.common.natsserver import free_ports
from services.common.process import ChildProcess
from services.intake_voice import form
from tests.conftest import AuthServer
from tests.intake_voice.harness import (
    ALICE,
    PUBLIC,
    STRONG_TOKEN,
    Harness,
    call,
    process_env,
    requests,
    stream_counts,
)
from tests.support import until

ATTACK_BYTES = 300 * 1024 * 1024  # the size the review sent
RESET = b"connection reset by the server"
CHUNK = 64 * 1024


# -- bodies capped before they are read ----------------------------------------------------------


async def test_body_over_the_cap_is_413_before_the_signature_check(harness: Harness) -> None:
    big = {"MessageSid": "SM1", "From": ALICE, "Body": "x" * form.MAX_BODY_BYTES}
    response = await harness.post("/twilio/sms", big)  # correctly signed, still too big
    assert response.status_code == 413 and response.headers["connection"] == "close"
    unsigned = await harness.http.post("/twilio/sms", content=b"a" * (form.MAX_BODY_BYTES + 1))
    assert unsigned.status_code == 413
    at_cap = {"MessageSid": "SM2", "From": ALICE, "Body": "y" * (form.MAX_BODY_BYTES - 200)}
    assert len(urlencode(at_cap)) <= form.MAX_BODY_BYTES
    assert (await harness.post("/twilio/sms", at_cap)).status_code == 200
    assert [r.id for r in await requests(harness.bus)] == ["SM2"]
    metrics = (await harness.internal.get("/metrics")).text
    assert 'frontdesk_messages_refused_total{reason="body_too_large"} 2.0' in metrics


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def _send_until_answered(port: int, head: bytes, piece: bytes) -> tuple[bytes, int]:
    """Write `head`, then `piece` again and again (up to ATTACK_BYTES) until the server answers.

    Returns the first bytes of the answer and how many body bytes the server let us send.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(reader.read(4096))
    sent = 0
    try:
        writer.write(head)
        while sent < ATTACK_BYTES and not answer.done():
            writer.write(piece)
            sent += len(piece)
            await asyncio.wait_for(writer.drain(), 10)
    except (ConnectionError, TimeoutError):
        pass  # the server closed on us (what we want) or stopped reading
    try:
        return await asyncio.wait_for(answer, 10), sent
    except ConnectionResetError:
        # The server closed with our unread bytes in its buffer, so its kernel answered with a reset,
        # which can overtake the 413 on the way to us. The metrics check below proves why it closed.
        return RESET, sent
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _rss_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{key} missing")


@pytest.fixture
def voice_process(nats_server: AuthServer, tmp_path: Path) -> Iterator[tuple[ChildProcess, int, int]]:
    """`python -m services.intake_voice` in production mode on free ports: (process, public, internal)."""
    port, http_port = free_ports(2)
    # One process: its memory and its /metrics see every request.
    env = process_env(
        nats_server.service_env("intake_voice"), tmp_path / "spool", port=port, http_port=http_port, workers=1
    )
    nats_server.create_topology()  # ops' step: the service's own user may not create streams
    proc = ChildProcess.service("intake_voice", env, log_dir=tmp_path)
    try:
        proc.wait_port(port)
        proc.wait_port(http_port)
        yield proc, port, http_port
    finally:
        proc.stop()


async def test_300_mb_streamed_body_is_refused_without_being_read(
    voice_process: tuple[ChildProcess, int, int],
) -> None:
    proc, port, http_port = voice_process
    async with httpx.AsyncClient(timeout=5) as http:

        async def ready() -> bool:
            return (await http.get(f"http://127.0.0.1:{http_port}/readyz")).status_code == 200

        await until(ready, 15, "intake_voice ready")
    before = _rss_mb(proc.pid, "VmRSS")
    base = b"POST /twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    # Chunked: no Content-Length to refuse up front, so the cap must hold while reading.
    chunked, chunked_sent = await _send_until_answered(
        port, base + b"Transfer-Encoding: chunked\r\n\r\n", _chunk(b"a" * CHUNK)
    )
    # Declared: refused on the header alone.
    declared, declared_sent = await _send_until_answered(
        port, base + b"Content-Length: %d\r\n\r\n" % ATTACK_BYTES, b"a" * CHUNK
    )
    peak = _rss_mb(proc.pid, "VmHWM")
    assert chunked.startswith(b"HTTP/1.1 413 ") or chunked == RESET, chunked[:200]
    assert declared.startswith(b"HTTP/1.1 413 ") or declared == RESET, declared[:200]
    # What got through is the cap plus socket buffers, not the 300 MB offered.
    assert chunked_sent < 32 * 1024 * 1024 and declared_sent < 32 * 1024 * 1024
    assert peak - before < 40, f"RSS {before:.0f} MB before, peak {peak:.0f} MB"
    print(
        f"\nsent before 413: chunked {chunked_sent >> 10} KiB, declared {declared_sent >> 10} KiB; "
        f"RSS {before:.1f} MB, peak {peak:.1f} MB"
    )
    async with httpx.AsyncClient(timeout=5) as http:
        # Still serving: a correctly signed SMS goes through.
        params = {"MessageSid": "SM1", "From": ALICE, "To": "+13125550000", "Body": "after the flood"}
        sig = RequestValidator(STRONG_TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
        ok = await http.post(
            f"http://127.0.0.1:{port}/twilio/sms", data=params, headers={"X-Twilio-Signature": sig}
        )
        assert ok.status_code == 200
        metrics = (await http.get(f"http://127.0.0.1:{http_port}/metrics")).text
        assert 'frontdesk_messages_refused_total{reason="body_too_large"} 2.0' in metrics


# -- signed but malformed: 4xx naming the field, nothing published -----------------------------


async def _refused(harness: Harness, path: str, params: dict[str, str], field: str) -> None:
    before = await stream_counts(harness.bus)
    response = await harness.post(path, params)
    assert response.status_code == 400, (path, params, response.status_code, response.text)
    assert response.text.startswith(f"{field}: "), response.text
    assert await stream_counts(harness.bus) == before and harness.spool.count() == 0


async def test_review_probes_answer_400_and_create_nothing(harness: Harness) -> None:
    await _refused(harness, "/twilio/voice/menu?attempt=abc", call("CA1", Digits="2"), "attempt")
    await _refused(harness, "/twilio/sms", {}, "MessageSid")
    await _refused(harness, "/twilio/sms", {"MessageSid": "SM3", "From": "%2", "Body": "hi"}, "From")
    await _refused(harness, "/twilio/sms", {"MessageSid": "SM4", "From": "anonymous", "Body": "x"}, "From")
    await _refused(harness, "/twilio/sms", {"MessageSid": "SM5", "From": ALICE, "Body": " "}, "Body")
    metrics = (await harness.internal.get("/metrics")).text
    assert 'frontdesk_messages_refused_total{reason="malformed"} 5.0' in metrics


async def test_out_of_range_numbers_are_400_not_500(harness: Harness) -> None:
    huge = "9" * 30  # an int no JSON encoder takes
    rec = {"RecordingSid": "RE1", "RecordingUrl": "https://api.twilio.com/rec/RE1"}
    await _refused(
        harness, "/twilio/voice/recording", call("CA2", RecordingDuration=huge, **rec), "RecordingDuration"
    )
    status = {"MessageSid": "SM6", "To": ALICE, "MessageStatus": "failed", "ErrorCode": huge}
    await _refused(harness, "/twilio/sms/status", status, "ErrorCode")
    await _refused(
        harness, "/twilio/voice/status", call("", CallStatus="completed") | {"CallSid": "C"}, "CallSid"
    )
    # range(NumMedia) used to run for 10**10 rounds: a signed request could pin a core.
    mms = {"MessageSid": "MM7", "From": ALICE, "Body": "pic", "NumMedia": "10000000000"}
    await _refused(harness, "/twilio/sms", mms, "NumMedia")
    await _refused(harness, "/twilio/voice/menu?attempt=7", call("CA3", Digits="2"), "attempt")


@pytest.mark.parametrize("raw", ["anonymous", "%2", "+266696687", "", "x" * 500, "\x1b[2J"])
async def test_any_caller_id_hears_a_working_menu_and_is_never_texted(harness: Harness, raw: str) -> None:
    greeting = await harness.post("/twilio/voice", call("CA9", raw))
    assert greeting.status_code == 200 and 'action="/twilio/voice/menu?attempt=1"' in greeting.text
    chosen = await harness.post("/twilio/voice/menu?attempt=1", call("CA9", raw, Digits="2"))
    assert chosen.status_code == 200 and "<Record" in chosen.text
    (req,) = await requests(harness.bus)
    assert req.sender.phone is None  # nothing to send an SMS to
    label = form.caller_label(raw) or "unknown caller"
    assert req.subject == f"New request by phone from {label}"


async def test_event_too_large_to_publish_is_413_and_not_spooled(harness: Harness) -> None:
    harness.spool.max_bytes = 4096  # stands in for NATS max_payload, reached without the body cap
    params = {"MessageSid": "SM8", "From": ALICE, "Body": "z" * 3000}  # body + full_text > 4 KiB
    response = await harness.post("/twilio/sms", params)
    assert response.status_code == 413 and harness.spool.count() == 0
    assert await requests(harness.bus) == []


# -- every route, random signed forms: never a 500, and a refusal publishes nothing -------------

ROUTES = (
    "/twilio/voice",
    "/twilio/voice/menu",
    "/twilio/voice/ticket",
    "/twilio/voice/dial-result",
    "/twilio/voice/recorded",
    "/twilio/voice/recording",
    "/twilio/voice/transcription",
    "/twilio/voice/status",
    "/twilio/sms",
    "/twilio/sms/status",
)
FIELDS = (
    "CallSid", "MessageSid", "SmsSid", "RecordingSid", "From", "To", "Body", "Digits", "SpeechResult",
    "CallStatus", "DialCallStatus", "RecordingStatus", "RecordingUrl", "RecordingDuration",
    "TranscriptionStatus", "TranscriptionText", "MessageStatus", "SmsStatus", "ErrorCode", "NumMedia",
    "MediaUrl0", "MediaContentType0", "MessagingServiceSid", "attempt", "choice", "key",
)  # fmt: skip
TYPICAL = (
    "", "CA0123456789abcdef0123456789abcdef", "SM1", "RE1", "C", "ca1", ALICE, "%2", "anonymous",
    "+266696687", "1", "2", "3", "9", "abc", "-1", "1e9", "99999999999999999999999", "completed",
    "delivered", "failed", "undelivered", "STOP", "start", "SR-1042 ETA 30", "flood", "image/jpeg",
    "https://api.twilio.com/x", "javascript:x", "\x00", "\r\n", "١٢", "10000000000",
)  # fmt: skip
values = st.one_of(st.sampled_from(TYPICAL), st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
forms = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=8)), values, max_size=8
)
queries = st.dictionaries(st.sampled_from(("attempt", "choice", "key")), values, max_size=2)


@pytest.mark.parametrize("route", ROUTES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=forms, query=queries)
async def test_signed_random_forms_never_500(
    harness: Harness, route: str, params: dict[str, str], query: dict[str, str]
) -> None:
    path = f"{route}?{urlencode(query)}" if query else route
    before = await stream_counts(harness.bus)
    spooled = harness.spool.count()
    response = await harness.post(path, params)
    assert response.status_code < 500, (path, params, response.text)
    if route.startswith("/twilio/voice"):
        assert response.status_code in (200, 400), (path, params, response.text)
    if response.status_code >= 400:
        assert await stream_counts(harness.bus) == before and harness.spool.count() == spooled
