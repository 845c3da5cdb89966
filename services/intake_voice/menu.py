"""The IVR script as TwiML: greeting, menu, ticket prompt, dial and voicemail. Pure: no I/O."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

MENU_TEXT = (
    "For an emergency, press 1 or say emergency. For a new request, press 2 or say new. "
    "For an existing ticket, press 3 or say existing ticket."
)
MAX_MENU_ATTEMPTS = 2  # the menu is repeated once, then the caller goes to voicemail


class CoverageText(Protocol):
    """What the caller's plan gives right now (services.policy.coverage.Coverage has these)."""

    @property
    def in_hours(self) -> bool: ...

    @property
    def sentence(self) -> str: ...

    @property
    def billable_fee(self) -> str | None: ...


def action(path: str, **state: str) -> str:
    """An action URL carrying per-call state in its query string (Twilio signs it back to us)."""
    kept = {key: value for key, value in state.items() if value}
    return f"{path}?{urlencode(kept)}" if kept else path


def billable_offer(fee: str) -> str:
    return f"Press 9 to request billable after-hours emergency service at {fee}."


def greeting(name: str | None, coverage: CoverageText, *, attempt: int, state: dict[str, str]) -> str:
    """The first thing a caller hears, and the menu (also used to repeat the menu once)."""
    response = VoiceResponse()
    gather = Gather(
        input="dtmf speech",
        num_digits=1,
        action=action("/twilio/voice/menu", attempt=str(attempt), **state),
        method="POST",
        timeout=6,
        hints="emergency, new, existing ticket",
        action_on_empty_result=True,  # no input still calls us, so we can repeat or go to voicemail
    )
    if attempt == 1:
        gather.say(f"Hello {name}, thank you for calling." if name else "Thank you for calling.")
        if not coverage.in_hours:
            gather.say(coverage.sentence)
    gather.say(MENU_TEXT)
    if coverage.billable_fee and not coverage.in_hours:
        gather.say(billable_offer(coverage.billable_fee))
    response.append(gather)
    return str(response)


def ask_ticket(state: dict[str, str]) -> str:
    response = VoiceResponse()
    gather = Gather(
        input="dtmf speech",
        finish_on_key="#",
        action=action("/twilio/voice/ticket", **state),
        method="POST",
        timeout=8,
        action_on_empty_result=True,
    )
    gather.say("Please enter or say your ticket number, then press pound.")
    response.append(gather)
    return str(response)


def dial(phone: str, state: dict[str, str]) -> str:
    response = VoiceResponse()
    response.say("Connecting you to the on-call technician.")
    response.dial(phone, timeout=20, action=action("/twilio/voice/dial-result", **state), method="POST")
    return str(response)


def voicemail(lead: str, state: dict[str, str]) -> str:
    response = VoiceResponse()
    if lead:
        response.say(lead)
    response.say("Please leave a message after the tone.")
    response.record(
        max_length=120,
        transcribe=True,
        action=action("/twilio/voice/recorded", **state),
        method="POST",
        recording_status_callback=action("/twilio/voice/recording", **state),
        transcribe_callback=action("/twilio/voice/transcription", **state),
    )
    return str(response)


def goodbye() -> str:
    response = VoiceResponse()
    response.say("Thank you. We have your message. Goodbye.")
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
