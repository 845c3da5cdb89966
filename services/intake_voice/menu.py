"""The IVR script as TwiML: greeting, menu, ticket prompt, dial and voicemail. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import Gather, VoiceResponse

from services.common.clock import Clock
from services.policy.model import Billable, Client, Policy
from services.wording.catalog import Wording

MAX_MENU_ATTEMPTS = 2  # the menu is repeated once, then the caller goes to voicemail


class CoverageText(Protocol):
    """What the caller's plan gives right now (services.policy.coverage.Coverage has these)."""

    @property
    def in_hours(self) -> bool: ...

    @property
    def hours_text(self) -> str: ...

    @property
    def offer(self) -> Billable | None: ...


class Promised(Protocol):
    """What the plan covers and when we will answer (Coverage has both)."""

    @property
    def hours_text(self) -> str: ...

    @property
    def respond_by(self) -> datetime: ...


def action(path: str, **state: str) -> str:
    """An action URL carrying per-call state in its query string (Twilio signs it back to us)."""
    kept = {key: value for key, value in state.items() if value}
    return f"{path}?{urlencode(kept)}" if kept else path


class Script:
    """Every line a caller hears comes from the voice templates, in the caller's zone."""

    def __init__(self, words: Wording, policy: Policy, clock: Clock) -> None:
        self.words, self.policy, self.clock = words, policy, clock

    def zone(self, client: Client | None) -> ZoneInfo:
        zone = client.timezone if client is not None and client.timezone else self.policy.desk.timezone
        return ZoneInfo(zone)

    def line(self, kind: str, client: Client | None = None, **values: object) -> str:
        return self.words.render(
            f"voice/{kind}",
            zone=self.zone(client),
            now=self.clock.now(),
            desk=self.policy.desk.name,
            **values,
        )

    def greeting(
        self, name: str | None, coverage: CoverageText, *, attempt: int, state: dict[str, str]
    ) -> str:
        """The first thing a caller hears, and the menu (also used to repeat the menu once). Only a
        known caller (one we can name) hears about their plan; nobody hears a promise before the menu."""
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
            gather.say(
                self.line(
                    "greeting",
                    name=name,
                    known=name is not None,
                    in_hours=coverage.in_hours,
                    hours=coverage.hours_text,
                )
            )
        fee = coverage.offer.fee if coverage.offer is not None and not coverage.in_hours else None
        gather.say(self.line("menu", fee=fee))
        response.append(gather)
        return str(response)

    def emergency_queued(self, client: Client | None, coverage: Promised) -> str:
        """After the caller chose emergency and nobody is paged now: when we will respond."""
        return self.line(
            "emergency_queued",
            client,
            known=client is not None,
            hours=coverage.hours_text,
            respond_by=coverage.respond_by,
        )

    def ask_ticket(self, state: dict[str, str]) -> str:
        response = VoiceResponse()
        gather = Gather(
            input="dtmf speech",
            finish_on_key="#",
            action=action("/twilio/voice/ticket", **state),
            method="POST",
            timeout=8,
            action_on_empty_result=True,
        )
        gather.say(self.line("ask_ticket"))
        response.append(gather)
        return str(response)

    def dial(self, phone: str, state: dict[str, str]) -> str:
        response = VoiceResponse()
        response.say(self.line("connecting"))
        response.dial(phone, timeout=20, action=action("/twilio/voice/dial-result", **state), method="POST")
        return str(response)

    def voicemail(self, lead: str, state: dict[str, str]) -> str:
        response = VoiceResponse()
        if lead:
            response.say(lead)
        response.say(self.line("leave_message"))
        response.record(
            max_length=120,
            transcribe=True,
            action=action("/twilio/voice/recorded", **state),
            method="POST",
            recording_status_callback=action("/twilio/voice/recording", **state),
            transcribe_callback=action("/twilio/voice/transcription", **state),
        )
        return str(response)

    def goodbye(self) -> str:
        response = VoiceResponse()
        response.say(self.line("goodbye"))
        response.hangup()
        return str(response)


def empty() -> str:
    return str(VoiceResponse())
