"""Drive signed inbound webhooks like Twilio does: an SMS, or a call that follows the app's TwiML."""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec
from twilio.request_validator import RequestValidator

from services.sandbox import resource
from services.sandbox.config import SandboxConfig
from services.sandbox.twiml import TwimlError, Verb, parse


class InboundSms(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    body: str
    to: str | None = None
    media_urls: list[str] = []


class InboundCall(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    to: str | None = None
    digits: list[str] = []
    speech: str | None = None
    record_seconds: int = 5
    hangup_after: int | None = None  # caller hangs up after this many TwiML documents
    dial_answered: bool = False
    transcript: str = "Sandbox transcription of the caller's message."


class Exchange(msgspec.Struct, kw_only=True):
    url: str
    params: dict[str, str]
    status: int
    twiml: str


class Webhooks:
    """Posts form webhooks to the app, signed over the public URL Twilio would have used."""

    def __init__(self, cfg: SandboxConfig, http: httpx.AsyncClient) -> None:
        self.cfg = cfg
        self.http = http
        self.validator = RequestValidator(cfg.auth_token.reveal())

    def resolve(self, current: str, target: str) -> str:
        """Absolute public URL of `target` (may be relative to the document that named it)."""
        return urljoin(current, target) if target else current

    def transport_url(self, public_url: str) -> str:
        # The app may sit behind a tunnel: sign the public URL, deliver to webhook_base.
        base = self.cfg.signed_base
        if public_url.startswith(base):
            return self.cfg.webhook_base.rstrip("/") + public_url[len(base) :]
        return public_url

    def public_url(self, path: str) -> str:
        return self.cfg.signed_base + path

    async def post(self, public_url: str, params: dict[str, str]) -> Exchange:
        signature = self.validator.compute_signature(public_url, params)
        try:
            response = await self.http.post(
                self.transport_url(public_url),
                data=params,
                headers={"X-Twilio-Signature": signature},
            )
        except httpx.HTTPError as exc:
            return Exchange(url=public_url, params=params, status=0, twiml=f"error: {exc}")
        return Exchange(url=public_url, params=params, status=response.status_code, twiml=response.text)


async def deliver_sms(hooks: Webhooks, sms: InboundSms) -> Exchange:
    cfg = hooks.cfg
    params: dict[str, str] = {
        "MessageSid": resource.sid("SM"),
        "SmsSid": "",
        "SmsMessageSid": "",
        "AccountSid": cfg.account_sid,
        "MessagingServiceSid": "",
        "From": sms.from_,
        "To": sms.to or cfg.phone_number,
        "Body": sms.body,
        "NumMedia": str(len(sms.media_urls)),
        "NumSegments": str(resource.segments(sms.body)),
        "SmsStatus": "received",
        "ApiVersion": resource.API_VERSION,
    }
    params["SmsSid"] = params["SmsMessageSid"] = params["MessageSid"]
    del params["MessagingServiceSid"]
    for index, url in enumerate(sms.media_urls):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = _content_type(url)
    return await hooks.post(hooks.public_url("/twilio/sms"), params)


def _content_type(url: str) -> str:
    path = urlsplit(url).path.lower()
    for suffix, kind in ((".png", "image/png"), (".gif", "image/gif"), (".pdf", "application/pdf")):
        if path.endswith(suffix):
            return kind
    return "image/jpeg"


class _Next(msgspec.Struct):
    url: str
    params: dict[str, str]
    # Callbacks Twilio fires after the action request (recording status, transcription).
    after: list[tuple[str, dict[str, str]]] = []


async def drive_call(hooks: Webhooks, call: InboundCall) -> list[Exchange]:
    """Ring the app, then follow Gather/Redirect/Record/Dial until a hangup, bounded in steps."""
    cfg = hooks.cfg
    call_sid = resource.sid("CA")
    base: dict[str, str] = {
        "CallSid": call_sid,
        "AccountSid": cfg.account_sid,
        "From": call.from_,
        "To": call.to or cfg.phone_number,
        "Caller": call.from_,
        "Called": call.to or cfg.phone_number,
        "Direction": "inbound",
        "ApiVersion": resource.API_VERSION,
    }
    digits = deque(call.digits)
    speech = call.speech
    exchanges: list[Exchange] = []
    step: _Next | None = _Next(hooks.public_url("/twilio/voice"), {**base, "CallStatus": "ringing"})
    documents = 0
    while step is not None and documents < cfg.max_call_steps:
        exchange = await hooks.post(step.url, step.params)
        exchanges.append(exchange)
        for url, params in step.after:
            exchanges.append(await hooks.post(url, params))
        documents += 1
        if exchange.status != 200 or (call.hangup_after is not None and documents >= call.hangup_after):
            break
        try:
            verbs = parse(exchange.twiml)
        except TwimlError:
            break  # Twilio plays "an application error has occurred" and hangs up
        current = step.url
        step = None
        in_call = {**base, "CallStatus": "in-progress"}
        for verb in verbs:
            if verb.name == "Gather":
                if digits:
                    reply = {"Digits": digits.popleft(), "FinishedOnKey": verb.attrs.get("finishOnKey", "#")}
                elif speech is not None and "speech" in verb.attrs.get("input", "dtmf"):
                    reply = {"SpeechResult": speech, "Confidence": "0.92"}
                    speech = None
                else:
                    break  # nothing left to say: the caller hangs up at the prompt
                step = _Next(hooks.resolve(current, verb.attrs.get("action", "")), {**in_call, **reply})
                break
            if verb.name == "Redirect":
                step = _Next(hooks.resolve(current, verb.text), in_call)
                break
            if verb.name == "Record":
                step = _record(hooks, current, verb, in_call, call)
                break
            if verb.name == "Dial":
                status = "completed" if call.dial_answered else "no-answer"
                if "action" in verb.attrs:
                    action = hooks.resolve(current, verb.attrs["action"])
                    step = _Next(action, {**in_call, "DialCallStatus": status})
                    break
                continue  # without an action Twilio carries on with the next verb
            if verb.name in ("Hangup", "Reject"):
                break
            # Say, Play, Pause, Sms, ... produce no request; the document simply continues.
    status_params = {**base, "CallStatus": "completed", "CallDuration": str(documents * 5)}
    exchanges.append(await hooks.post(hooks.public_url("/twilio/voice/status"), status_params))
    return exchanges


def _record(hooks: Webhooks, current: str, verb: Verb, in_call: dict[str, str], call: InboundCall) -> _Next:
    seconds = call.record_seconds
    recording_sid = resource.sid("RE")
    account = in_call["AccountSid"]
    recording_url = (
        f"https://api.twilio.com/{resource.API_VERSION}/Accounts/{account}/Recordings/{recording_sid}"
    )
    recording = {
        "RecordingUrl": recording_url,
        "RecordingSid": recording_sid,
        "RecordingDuration": str(seconds),
    }
    after: list[tuple[str, dict[str, str]]] = []
    if "recordingStatusCallback" in verb.attrs:
        after.append(
            (
                hooks.resolve(current, verb.attrs["recordingStatusCallback"]),
                {
                    "AccountSid": account,
                    "CallSid": in_call["CallSid"],
                    "RecordingSid": recording_sid,
                    "RecordingUrl": recording_url,
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(seconds),
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                },
            )
        )
    if "transcribeCallback" in verb.attrs:
        after.append(
            (
                hooks.resolve(current, verb.attrs["transcribeCallback"]),
                {
                    **in_call,
                    "TranscriptionSid": resource.sid("TR"),
                    "TranscriptionText": call.transcript,
                    "TranscriptionStatus": "completed",
                    "TranscriptionUrl": recording_url + "/Transcriptions",
                    "RecordingSid": recording_sid,
                    "RecordingUrl": recording_url,
                },
            )
        )
    return _Next(hooks.resolve(current, verb.attrs.get("action", "")), {**in_call, **recording}, after)


def exchange_list(exchanges: list[Exchange]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(item) for item in exchanges]
