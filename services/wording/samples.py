"""Sample tickets and values that every template is rendered against at start and in the tests."""

from __future__ import annotations

import functools
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from services.contracts.requests import Channel, Priority, Sender
from services.contracts.tickets import Decision, Disposition, Ticket
from services.wording.values import FOLLOW_UP_MAX, NAME_MAX, REASON_MAX, TRANSCRIPT_MAX, ticket_values

NOW = datetime(2026, 12, 1, 13, 13, tzinfo=UTC)  # Tuesday 7:13 AM in Chicago, before opening
DESK = "Northwind IT Services"
CHICAGO = ZoneInfo("America/Chicago")
LONG_NAME = ("Maximiliana Featherstonehaugh-Worthington " * 2)[:NAME_MAX]
LONG_REASON = ("waiting for the replacement switch from the distributor, " * 4)[:REASON_MAX]
LONG_TEXT = ("The printer on the second floor shows error 50.4 again after the reboot; " * 4)[:FOLLOW_UP_MAX]
LONG_TRANSCRIPT = ("Hi this is about the warehouse scanner, it keeps dropping off the wifi. " * 4)[
    :TRANSCRIPT_MAX
]


SCENARIOS = Path(__file__).resolve().parent / "samples.toml"


class ClientFacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    tier: str


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[[sample]]` of samples.toml, as written there (the ticket is built from it by `_ticket`)."""

    number: str
    client: ClientFacts
    contact: Sender
    channel: Channel
    subject: str
    priority: Priority
    disposition: Disposition
    due_in: timedelta
    zone: str
    hours: str
    fee: str | None = None


class Sample:
    """One sample ticket with the facts messages about it depend on."""

    def __init__(self, scenario: Scenario) -> None:
        self.ticket = _ticket(scenario)
        self.zone = ZoneInfo(scenario.zone)
        self.hours, self.fee = scenario.hours, scenario.fee

    @property
    def in_hours(self) -> bool:
        return self.ticket.decision.in_hours

    def base(self) -> dict[str, Any]:
        return {**ticket_values(self.ticket), "zone": self.zone, "now": NOW, "desk": DESK}


def _ticket(scenario: Scenario) -> Ticket:
    client = scenario.client
    decision = Decision(
        client_id=client.id,
        client_name=client.name,
        tier=client.tier,
        priority=scenario.priority,
        in_hours=scenario.disposition == "dispatch",
        disposition=scenario.disposition,
        notify_at=NOW,
        response_due=NOW + scenario.due_in,
        assignee="alice",
        oncall="bob",
    )
    return Ticket(
        number=scenario.number,
        request_id=f"req-{scenario.number}",
        client_id=client.id,
        channel=scenario.channel,
        contact=scenario.contact,
        subject=scenario.subject,
        summary=scenario.subject,
        opened_at=NOW,
        decision=decision,
    )


class _Scenarios(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sample: tuple[Scenario, ...]


def read_scenarios(path: Path) -> tuple[Scenario, ...]:
    """The `[[sample]]` entries of a samples file; a bad entry is refused naming its field."""
    with path.open("rb") as file:
        return msgspec.convert(tomllib.load(file), _Scenarios).sample


@functools.cache
def sample_tickets() -> tuple[Sample, ...]:
    """The shipped scenarios, read once."""
    return tuple(Sample(scenario) for scenario in read_scenarios(SCENARIOS))


VOICE_KINDS = frozenset(
    {
        "greeting",
        "menu",
        "ask_ticket",
        "describe_request",
        "about_ticket",
        "emergency_queued",
        "connecting",
        "tech_unreachable",
        "leave_message",
        "goodbye",
    }
)
EFFECTS = ("accepted", "eta", "delayed", "resolved", "unchanged")
HELP = (
    ("not understood", 1),
    ("no open tickets", 0),
    ("ambiguous", 3),
    ("no open ticket named", 2),
    ("needs minutes", 1),
)


def _per_sample(sample: Sample) -> dict[str, list[dict[str, Any]]]:
    base = sample.base()
    ticket = sample.ticket
    later = NOW + timedelta(minutes=45)
    tech = LONG_NAME
    fee_values = {"fee": sample.fee, "fee_within": "2 hours" if sample.fee else None}
    ack = {
        **base,
        "disposition": ticket.decision.disposition,
        "respond_by": ticket.decision.response_due,
        "hours": sample.hours,
        **fee_values,
    }
    numbers = [f"SR-{1000 + i}" for i in range(7)]
    voice = {
        **base,
        "name": base["first_name"] or None,
        "in_hours": sample.in_hours,
        "hours": sample.hours,
        "respond_by": ticket.decision.response_due,
    }
    return {
        "client_ack": [ack],
        "client_accepted": [{**base, "tech": tech, "eta": eta} for eta in (None, later)],
        "client_eta": [{**base, "tech": tech, "eta": later}],
        "client_delay": [{**base, "tech": tech, "eta": later, "reason": r} for r in ("", LONG_REASON)],
        "client_running_late": [{**base, "estimate": later}],
        "client_missed": [{**base, "ops_name": "Northwind Operations"}],
        "client_resolved": [{**base, "tech": tech, "reopen_until": NOW + timedelta(days=3)}],
        "client_reopened": [{**base, "tech": tech}],
        # A dispatcher's own words from the console, on one line (the SMS is cut to its segments).
        "client_update": [{**base, "text": LONG_TEXT}],
        "tech_dispatch": [
            {
                **base,
                "escalated": escalated,
                "voicemail": LONG_TRANSCRIPT if escalated else "",
                "recording_url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
                if escalated
                else "",
                "follow_ups": [LONG_TEXT] if escalated else [],
                "notes": "Plant floor runs two shifts; the MES server is critical.",
                "last_touch": 'Carol Diaz resolved SR-1001 "Printer jam" on Mon Nov 30',
                "several": escalated,
            }
            for escalated in (False, True)
        ],
        "tech_follow_up": [{**base, "text": LONG_TEXT}],
        "tech_voicemail": [
            {**base, "voicemail": LONG_TRANSCRIPT, "recording_url": url} for url in ("", "https://x.test/RE1")
        ],
        "tech_reopened": [{**base, "text": LONG_TEXT}],
        "tech_confirm": [
            {**base, "effect": effect, "eta": later, "client_told": told}
            for effect in EFFECTS
            for told in (True, False)
        ],
        "tech_help": [
            {**base, "why": why, "open_numbers": numbers[:count], "named": "SR-999"} for why, count in HELP
        ],
        "ops_alert": [{**base, "what": "response target missed, nobody accepted", "assignee": "carol"}],
        # A caller hears what the call's facts say; the menu also offers the fee, when there is one.
        **{kind: [voice] for kind in VOICE_KINDS},
        "menu": [{**voice, "fee": fee} for fee in (None, sample.fee) if fee or not sample.fee],
    }


def samples() -> dict[str, list[dict[str, Any]]]:
    """For every template name (`<channel>/<kind>`), the values to render it with."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sample in sample_tickets():
        for kind, values in _per_sample(sample).items():
            if kind in VOICE_KINDS:
                channels: tuple[str, ...] = ("voice",)
            elif kind.startswith("client_"):
                channels = ("sms", "email")  # a client hears on the channel they used or prefer
            else:
                channels = ("sms",)  # techs and ops are texted
            for channel in channels:
                out.setdefault(f"{channel}/{kind}", []).extend(values)
    return out
