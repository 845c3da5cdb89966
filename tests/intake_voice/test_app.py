"""The real app over HTTP (ASGI) against a real nats-server: signatures, IVR branches, SMS, spooling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.config import BusConfig, Secret
from services.common.natsserver import NatsServer, free_port
from services.contracts import subjects as s
from services.contracts.events import OptOutChanged, RequestAmended, SmsStatusReported, TechReplied
from services.intake_voice.app import Voice, build_app, main
from services.intake_voice.config import VoiceConfig
from services.policy.coverage import describe
from tests.conftest import corpus
from tests.intake_voice.harness import (
    ALICE,
    GARY,
    OMAR,
    PUBLIC,
    SATURDAY,
    TARA,
    TOKEN,
    TUESDAY,
    Harness,
    call,
    requests,
    stored,
)
from tests.intake_voice.policy_text import write_policy
from tests.support import serving, until


async def test_forged_and_missing_signatures_are_refused(harness: Harness) -> None:
    assert (await harness.post("/twilio/voice", call("CA1"), signature="")).status_code == 403
    assert (
        await harness.post("/twilio/voice", call("CA1"), signature="bm90IGEgc2lnbmF0dXJl")
    ).status_code == 403
    # Signed for other params: a tampered body is refused too.
    good = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", call("CA1"))
    tampered = await harness.http.post(
        "/twilio/sms", data={**call("CA1"), "Body": "x"}, headers={"X-Twilio-Signature": good}
    )
    assert tampered.status_code == 403
    ok = await harness.post("/twilio/voice", call("CA1"))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/xml")
    assert await requests(harness.bus) == []


async def test_known_caller_after_hours_hears_plan_and_billable_offer(harness: Harness) -> None:
    twiml = (await harness.post("/twilio/voice", call("CA2"))).text
    greeting = (
        "Hello Alice, thank you for calling Test Desk. Our office is closed right now. "
        "Your plan covers weekdays 8 AM to 5 PM."
    )
    assert f"<Say>{greeting}</Say>" in twiml
    # Nothing is promised before the menu has offered it: no message, no callback time.
    assert "message" not in twiml.split("press 1")[0].lower() and "respond" not in twiml
    assert "Press 9 to request billable after-hours emergency service at $250." in twiml
    assert 'action="/twilio/voice/menu?attempt=1"' in twiml and 'numDigits="1"' in twiml
    assert 'input="dtmf speech"' in twiml


async def test_unknown_caller_after_hours_hears_no_plan_wording(harness: Harness) -> None:
    greeting = (await harness.post("/twilio/voice", call("CA8", "+15550009999"))).text
    assert "<Say>Thank you for calling Test Desk. Our office is closed right now.</Say>" in greeting
    assert "plan" not in greeting.lower()
    emergency = (
        await harness.post("/twilio/voice/menu?attempt=1", call("CA8", "+15550009999", Digits="1"))
    ).text
    assert "<Say>We will respond by Mon Nov 23, 9:00 AM CST.</Say>" in emergency and "plan" not in emergency


async def test_in_hours_caller_hears_menu_without_offer(harness: Harness) -> None:
    harness.clock.set(TUESDAY)
    twiml = (await harness.post("/twilio/voice", call("CA3", "+15550009999"))).text
    assert "Thank you for calling Test Desk." in twiml and "Press 9" not in twiml and "Your plan" not in twiml


async def test_emergency_for_covered_client_dials_oncall_then_voicemail(harness: Harness) -> None:
    twiml = (await harness.post("/twilio/voice/menu?attempt=1", call("CA4", GARY, Digits="1"))).text
    assert (
        f'<Dial action="/twilio/voice/dial-result?choice=1" method="POST" timeout="20">{OMAR}</Dial>' in twiml
    )
    (req,) = await requests(harness.bus)
    assert (req.id, req.priority_hint, req.hints, req.sender.phone) == ("CA4", "emergency", ("ivr:1",), GARY)
    assert req.sender.name == "Gary" and "Globex" in req.subject
    missed = await harness.post(
        "/twilio/voice/dial-result?choice=1", call("CA4", GARY, DialCallStatus="no-answer")
    )
    assert (
        "<Record" in missed.text and 'maxLength="120"' in missed.text and 'transcribe="true"' in missed.text
    )
    assert 'recordingStatusCallback="/twilio/voice/recording?choice=1"' in missed.text
    answered = await harness.post("/twilio/voice/dial-result", call("CA4", GARY, DialCallStatus="completed"))
    assert "<Hangup" in answered.text


async def test_emergency_on_business_plan_after_hours_goes_to_voicemail(harness: Harness) -> None:
    twiml = (await harness.post("/twilio/voice/menu?attempt=1", call("CA5", Digits="1"))).text
    assert "<Dial" not in twiml and "<Record" in twiml
    assert "<Say>We will respond by Mon Nov 23, 9:00 AM CST.</Say>" in twiml
    (req,) = await requests(harness.bus)
    assert req.priority_hint == "emergency" and not req.billable_accepted


async def test_billable_acceptance_pages_oncall(harness: Harness) -> None:
    twiml = (await harness.post("/twilio/voice/menu?attempt=1", call("CA6", Digits="9"))).text
    assert f">{OMAR}</Dial>" in twiml
    (req,) = await requests(harness.bus)
    assert req.billable_accepted and req.priority_hint == "emergency" and req.hints == ("ivr:9",)


async def test_new_request_by_speech(harness: Harness) -> None:
    twiml = (
        await harness.post("/twilio/voice/menu?attempt=1", call("CA7", SpeechResult="A new request."))
    ).text
    assert "<Record" in twiml
    (req,) = await requests(harness.bus)
    assert req.hints == ("ivr:2", "speech") and req.priority_hint == "normal"


async def test_existing_ticket_asks_for_number(harness: Harness) -> None:
    ask = (
        await harness.post("/twilio/voice/menu?attempt=1", call("CA8", SpeechResult="existing ticket"))
    ).text
    assert 'action="/twilio/voice/ticket"' in ask
    assert await requests(harness.bus) == []  # the choice is not complete yet
    await harness.post("/twilio/voice/ticket", call("CA8", Digits="1042"))
    (req,) = await requests(harness.bus)
    assert req.thread.ticket_token == "SR-1042" and req.hints == ("ivr:3",)


async def test_no_input_repeats_menu_once_then_voicemail(harness: Harness) -> None:
    again = (await harness.post("/twilio/voice/menu?attempt=1", call("CA9", Digits=""))).text
    assert 'action="/twilio/voice/menu?attempt=2"' in again and "For an emergency, press 1" in again
    assert await requests(harness.bus) == []
    final = (await harness.post("/twilio/voice/menu?attempt=2", call("CA9", Digits=""))).text
    assert "<Record" in final
    (req,) = await requests(harness.bus)
    assert req.id == "CA9" and req.hints == ("ivr:none",)


async def test_recording_and_transcription_amend_the_same_request(harness: Harness) -> None:
    await harness.post("/twilio/voice/menu?attempt=1", call("CA10", Digits="2"))
    rec = {"RecordingSid": "RE1", "RecordingUrl": "https://api.twilio.com/rec/RE1", "RecordingDuration": "17"}
    await harness.post("/twilio/voice/recording?choice=2", call("CA10", RecordingStatus="completed", **rec))
    await harness.post("/twilio/voice/recording?choice=2", call("CA10", RecordingStatus="completed", **rec))
    await harness.post(
        "/twilio/voice/transcription?choice=2",
        call("CA10", TranscriptionStatus="completed", TranscriptionText="Printer on fire", **rec),
    )
    await harness.post("/twilio/voice/status", call("CA10", CallStatus="completed"))
    messages = await stored(harness.bus, s.STREAM_REQUESTS)
    assert [subject for subject, _, _ in messages] == [
        s.request_subject("voice"),
        s.REQUEST_AMENDED,
        s.REQUEST_AMENDED,
    ]
    recording = msgspec.convert(messages[1][2], RequestAmended)
    transcript = msgspec.convert(messages[2][2], RequestAmended)
    assert (recording.id, recording.request_id, recording.recording_seconds) == ("RE1:recording", "CA10", 17)
    assert (transcript.id, transcript.request_id, transcript.transcription) == (
        "RE1:transcription",
        "CA10",
        "Printer on fire",
    )
    assert messages[1][1]["Nats-Msg-Id"] == "RE1:recording"


async def test_hang_up_before_choosing_is_a_missed_call(harness: Harness) -> None:
    await harness.post("/twilio/voice", call("CA11", "+15550001111"))
    await harness.post("/twilio/voice/status", call("CA11", "+15550001111", CallStatus="ringing"))
    assert await requests(harness.bus) == []
    await harness.post("/twilio/voice/status", call("CA11", "+15550001111", CallStatus="completed"))
    (req,) = await requests(harness.bus)
    assert req.id == "CA11" and req.subject == "Missed call from +15550001111" and req.sender.name is None


async def test_duplicate_webhooks_store_one_message(harness: Harness) -> None:
    for _ in range(3):
        await harness.post("/twilio/voice/menu?attempt=1", call("CA12", Digits="2"))
        await harness.post(
            "/twilio/sms", {"MessageSid": "SM12", "From": ALICE, "To": "+13125550000", "Body": "hi"}
        )
    found = await stored(harness.bus, s.STREAM_REQUESTS)
    assert sorted(headers["Nats-Msg-Id"] for _, headers, _ in found) == ["CA12", "SM12"]


async def test_tech_replies_are_parsed(harness: Harness) -> None:
    await harness.post("/twilio/sms", {"MessageSid": "SM20", "From": OMAR, "Body": "SR-1042 ETA 30"})
    await harness.post("/twilio/sms", {"MessageSid": "SM21", "From": "(312) 555-0111", "Body": "1042 A"})
    await harness.post("/twilio/sms", {"MessageSid": "SM22", "From": TARA, "Body": "what?"})
    replies = [
        msgspec.convert(body, TechReplied) for _, _, body in await stored(harness.bus, s.STREAM_REPLIES)
    ]
    assert [(r.id, r.phone, r.verb, r.ticket_number, r.minutes) for r in replies] == [
        ("SM20", OMAR, "eta", "SR-1042", 30),
        ("SM21", TARA, "accept", "SR-1042", None),
        ("SM22", TARA, "unknown", None, None),
    ]
    assert await requests(harness.bus) == []


async def test_sms_status_callbacks_report_final_states_once(harness: Harness) -> None:
    path = "/twilio/sms/status?key=ack.cmd-7"
    base = {"MessageSid": "SM70", "To": "+13125550150", "From": "+13125550199", "AccountSid": "AC1"}
    sent = await harness.post(path, {**base, "MessageStatus": "sent"})
    assert sent.status_code == 200 and await stored(harness.bus, s.STREAM_REPLIES) == []
    for _ in range(2):  # Twilio retries a callback it thinks failed
        answer = await harness.post(path, {**base, "MessageStatus": "undelivered", "ErrorCode": "30003"})
        assert answer.status_code == 200
    found = await stored(harness.bus, s.STREAM_REPLIES)
    assert [(subject, headers["Nats-Msg-Id"]) for subject, headers, _ in found] == [
        (s.SMS_STATUS_REPORTED, "SM70.undelivered")
    ]
    report = msgspec.convert(found[0][2], SmsStatusReported)
    assert (report.message_sid, report.status, report.error_code, report.key, report.to) == (
        "SM70",
        "undelivered",
        30003,
        "ack.cmd-7",
        "+13125550150",
    )
    # The key is part of the signed URL: changing it breaks the signature.
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, {**base, "MessageStatus": "failed"})
    forged = await harness.http.post(
        "/twilio/sms/status?key=other",
        data={**base, "MessageStatus": "failed"},
        headers={"X-Twilio-Signature": sig},
    )
    assert forged.status_code == 403
    missing = await harness.post("/twilio/sms/status", {"MessageStatus": "failed"})
    assert missing.status_code == 400 and "MessageSid" in missing.text


async def test_stop_and_start(harness: Harness) -> None:
    response = await harness.post("/twilio/sms", {"MessageSid": "SM30", "From": ALICE, "Body": "stop"})
    assert response.text.endswith("<Response />")
    await harness.post("/twilio/sms", {"MessageSid": "SM31", "From": ALICE, "Body": "START"})
    found = await stored(harness.bus, s.STREAM_REPLIES)
    changes = [msgspec.convert(body, OptOutChanged) for _, _, body in found]
    assert [(c.phone, c.opted_out, c.keyword) for c in changes] == [
        (ALICE, True, "STOP"),
        (ALICE, False, "START"),
    ]
    assert {subject for subject, _, _ in found} == {s.OPT_OUT_CHANGED}


async def test_client_mms_via_messaging_service_with_emergency_keyword(harness: Harness) -> None:
    params = {
        "MessageSid": "MM40",
        "From": ALICE,
        "MessagingServiceSid": "MG1",
        "Body": "Basement flood!\nsee photo",
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/Media/ME1",
        "MediaContentType0": "image/jpeg",
    }
    await harness.post("/twilio/sms", params)
    (req,) = await requests(harness.bus)
    assert (req.channel, req.recipient, req.priority_hint, req.hints) == (
        "sms",
        "MG1",
        "emergency",
        ("keyword:flood",),
    )
    assert req.subject == "Basement flood!" and req.sender.name == "Alice"
    (media,) = req.attachments
    assert (media.object_name, media.content_type) == ("https://api.twilio.com/Media/ME1", "image/jpeg")


async def test_real_twilio_webhook_bodies(harness: Harness) -> None:
    folder = corpus("twilio")
    sms = json.loads((folder / "plugin-webhook-sms.json").read_text())
    voice = json.loads((folder / "plugin-webhook-voice.json").read_text())
    # As captured (empty signature): refused.
    assert (
        await harness.http.post("/twilio/sms", data=sms["body"], headers=sms["headers"])
    ).status_code == 403
    assert (await harness.post("/twilio/voice", voice["body"])).status_code == 200
    assert (await harness.post("/twilio/sms", sms["body"])).status_code == 200
    (req,) = await requests(harness.bus)
    assert (req.id, req.body, req.sender.phone, req.recipient) == (
        "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Ahoy",
        "+15017122661",
        "+15558675310",
    )


async def test_public_port_serves_webhooks_and_bare_probes_only(harness: Harness) -> None:
    assert (await harness.http.get("/healthz")).json() == {"status": "ok"}
    assert (await harness.http.get("/readyz")).json() == {"status": "ready"}
    # Production (the default): no API description and no metrics for the internet.
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics", "/twilio/unknown"):
        assert (await harness.http.get(path)).status_code == 404, path
    assert (await harness.http.get("/twilio/sms")).status_code == 405  # webhooks are POSTs only
    ready = await harness.internal.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "spooled": 0,
        "spool_rejected": 0,
    }
    assert (await harness.internal.get("/metrics")).status_code == 200


async def test_docs_only_in_development(harness: Harness) -> None:
    cfg = msgspec.structs.replace(harness.voice.cfg, environment="development")
    voice = Voice(cfg=cfg, policy=harness.voice.policy, outbox=harness.voice.outbox)
    transport = httpx.ASGITransport(app=build_app(voice))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert "/twilio/voice/menu" in (await http.get("/openapi.json")).json()["paths"]
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/redoc")).status_code == 200
        assert (await http.get("/metrics")).status_code == 404


async def test_nats_down_during_call_spools_then_delivers_once(
    harness: Harness, nats_server: NatsServer
) -> None:
    nats_server.stop()
    started = time.monotonic()
    twiml = (await harness.post("/twilio/voice/menu?attempt=1", call("CA50", Digits="2"))).text
    rec = {
        "RecordingSid": "RE50",
        "RecordingUrl": "https://api.twilio.com/rec/RE50",
        "RecordingDuration": "5",
    }
    await harness.post("/twilio/voice/recording", call("CA50", **rec))
    elapsed = time.monotonic() - started
    assert "<Record" in twiml  # voicemail still works while NATS is away
    assert elapsed < 2 * harness.voice.outbox.timeout + 1.0
    assert len(harness.spool.pending()) == 2
    assert (await harness.http.get("/readyz")).status_code == 503
    assert (await harness.internal.get("/readyz")).json()["spooled"] == 2

    nats_server.start()  # same port, same store
    stop = asyncio.Event()
    flusher = asyncio.create_task(harness.voice.outbox.run(stop, 0.1))
    try:
        await until(lambda: not harness.spool.pending(), 15, "the spool drained")
    finally:
        stop.set()
        await flusher
    assert harness.spool.pending() == []
    found = await stored(harness.bus, s.STREAM_REQUESTS)
    assert sorted(headers["Nats-Msg-Id"] for _, headers, _ in found) == ["CA50", "RE50:recording"]


async def test_signed_webhook_missing_callsid_is_a_clear_400(harness: Harness) -> None:
    response = await harness.post("/twilio/voice/menu?attempt=1", {"From": ALICE, "Digits": "2"})
    assert response.status_code == 400 and "CallSid" in response.text


async def test_main_serves_over_a_real_socket(bus_config: BusConfig, tmp_path: Path) -> None:
    write_policy(tmp_path)
    cfg = VoiceConfig(
        port=free_port(),
        http_port=free_port(),
        public_url=PUBLIC,
        auth_token=Secret(TOKEN),
        policy=str(tmp_path / "policy.yaml"),
        spool_dir=str(tmp_path / "spool"),
        bus=bus_config,
    )
    base = f"http://127.0.0.1:{cfg.port}"
    async with serving(main, cfg, stop_within=10):
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await until(ready, 10, "intake_voice ready")
            params = {"MessageSid": "SM60", "From": ALICE, "To": "+13125550000", "Body": "Hello"}
            sig = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
            response = await http.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": sig})
            assert response.status_code == 200
            assert (await http.get("/metrics")).status_code == 404
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cfg.http_port}", timeout=5) as http:
            metrics = (await http.get("/metrics")).text
            assert 'frontdesk_requests_received_total{channel="sms"} 1.0' in metrics
            assert (await http.get("/readyz")).json()["status"] == "ready"
    probe = await Bus.connect(bus_config, "probe")
    try:
        (req,) = await requests(probe)
        assert (req.id, req.channel, req.body) == ("SM60", "sms", "Hello")
    finally:
        await probe.close()


async def test_metrics_count_requests_by_channel(harness: Harness) -> None:
    params = {
        "MessageSid": "SM77",
        "From": ALICE,
        "To": "+15558675310",
        "Body": "Printer jammed",
        "NumMedia": "0",
    }
    assert (await harness.post("/twilio/sms", params)).status_code == 200
    assert (await harness.post("/twilio/sms", params)).status_code == 200  # Twilio retry: same sid
    forged = await harness.http.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403
    metrics = (await harness.internal.get("/metrics")).text
    assert 'frontdesk_requests_received_total{channel="sms"}' in metrics
    assert 'frontdesk_messages_refused_total{reason="invalid_signature"} 1.0' in metrics
    assert len(await requests(harness.bus)) == 1


async def test_coverage_and_greeting_are_worked_out_once_a_minute_and_follow_the_clock(
    harness: Harness,
) -> None:
    voice = harness.voice
    acme = voice.caller(ALICE).client
    assert acme is not None
    harness.clock.set(SATURDAY + timedelta(seconds=17))
    first = voice.coverage(acme, emergency=True)
    # Exactly what the policy says at the start of the minute, for every call within it.
    assert first == describe(voice.policy, acme, SATURDAY, emergency=True)
    harness.clock.advance(timedelta(seconds=40))
    assert voice.coverage(acme, emergency=True) is first
    greeting = voice.greeting("Alice", acme, attempt=1)
    assert voice.greeting("Alice", acme, attempt=1) is greeting and "Press 9" in greeting
    # Monday morning the after-hours offer is gone: a new minute is worked out again.
    harness.clock.set(TUESDAY)
    assert voice.coverage(acme, emergency=True) == describe(voice.policy, acme, TUESDAY, emergency=True)
    assert "Press 9" not in voice.greeting("Alice", acme, attempt=1)
    answered = await harness.post("/twilio/voice", call("CA77"))
    assert answered.status_code == 200 and "Press 9" not in answered.text
