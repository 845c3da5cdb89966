"""Sample tickets and values that every template is rendered against at start and in the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.contracts.requests import Channel, Priority, Sender
from services.contracts.tickets import Decision, Disposition, Ticket
from services.wording.values import FOLLOW_UP_MAX, NAME_MAX, REASON_MAX, TRANSCRIPT_MAX, ticket_values

NOW = datetime(2026, 12, 1, 13, 13, tzinfo=UTC)  # Tuesday 7:13 AM in Chicago, before opening
DESK = "Northwind IT Services"
CHICAGO = ZoneInfo("America/Chicago")
LONDON = ZoneInfo("Europe/London")
LONG_NAME = ("Maximiliana Featherstonehaugh-Worthington " * 2)[:NAME_MAX]
LONG_REASON = ("waiting for the replacement switch from the distributor, " * 4)[:REASON_MAX]
LONG_TEXT = ("The printer on the second floor shows error 50.4 again after the reboot; " * 4)[:FOLLOW_UP_MAX]
LONG_TRANSCRIPT = ("Hi this is about the warehouse scanner, it keeps dropping off the wifi. " * 4)[
    :TRANSCRIPT_MAX
]


class Sample:
    """One sample ticket with the facts messages about it depend on."""

    def __init__(
        self,
        ticket: Ticket,
        *,
        zone: ZoneInfo,
        hours: str,
        fee: str | None = None,
    ) -> None:
        self.ticket, self.zone, self.hours, self.fee = ticket, zone, hours, fee

    @property
    def in_hours(self) -> bool:
        return self.ticket.decision.in_hours

    def base(self) -> dict[str, Any]:
        return {**ticket_values(self.ticket), "zone": self.zone, "now": NOW, "desk": DESK}


def _ticket(
    number: str,
    *,
    client: tuple[str, str, str],
    contact: Sender,
    channel: Channel,
    subject: str,
    priority: Priority,
    disposition: Disposition,
    due_in: timedelta,
) -> Ticket:
    client_id, client_name, tier = client
    decision = Decision(
        client_id=client_id,
        client_name=client_name,
        tier=tier,
        priority=priority,
        in_hours=disposition == "dispatch",
        disposition=disposition,
        notify_at=NOW,
        response_due=NOW + due_in,
        assignee="alice",
        oncall="bob",
    )
    return Ticket(
        number=number,
        request_id=f"req-{number}",
        client_id=client_id,
        channel=channel,
        contact=contact,
        subject=subject,
        summary=subject,
        opened_at=NOW,
        decision=decision,
    )


PREMIUM_HOURS = "emergencies around the clock, everything else weekdays 8 AM to 5 PM"
COMPLIMENTARY_HOURS = "weekdays 8 AM to 5 PM"

SAMPLES = (
    # A premium caller's emergency before opening: the on-call tech is paged.
    Sample(
        _ticket(
            "SR-1003",
            client=("acme", "Acme Manufacturing", "premium"),
            contact=Sender(phone="+13125550150", name="Jane Roe"),
            channel="voice",
            subject="Emergency call from Jane Roe (Acme Manufacturing)",
            priority="emergency",
            disposition="page_oncall",
            due_in=timedelta(hours=1),
        ),
        zone=CHICAGO,
        hours=PREMIUM_HOURS,
    ),
    # A complimentary client's emergency email before opening: queued, with the billable offer.
    Sample(
        _ticket(
            "SR-1004",
            client=("globex", "Globex Logistics", "complimentary"),
            contact=Sender(email="hank@globex.example", name="Hank Scorpio"),
            channel="email",
            subject="Warehouse network down " + "x" * 100,
            priority="emergency",
            disposition="queue",
            due_in=timedelta(hours=4, minutes=47),
        ),
        zone=CHICAGO,
        hours=COMPLIMENTARY_HOURS,
        fee="$250",
    ),
    # A stranger's voicemail: no plan, no name, a phone number only; due days away.
    Sample(
        _ticket(
            "SR-1005",
            client=("unknown", "Unknown sender", "complimentary"),
            contact=Sender(phone="+13125559876"),
            channel="voice",
            subject="Voicemail from +13125559876",
            priority="emergency",
            disposition="queue",
            due_in=timedelta(days=6, hours=2),
        ),
        zone=CHICAGO,
        hours=COMPLIMENTARY_HOURS,
        fee="$250",
    ),
    # A premium client abroad with a long name, in hours: London time in their messages.
    Sample(
        _ticket(
            "SR-10042",
            client=("initech", "Initech UK " + "Holdings " * 10, "premium"),
            contact=Sender(email="peter@initech.example", phone="+442079460123", name=LONG_NAME),
            channel="sms",
            subject="TPS report cover sheets " * 8,
            priority="normal",
            disposition="dispatch",
            due_in=timedelta(hours=4),
        ),
        zone=LONDON,
        hours=PREMIUM_HOURS,
    ),
    # An unknown email sender in hours.
    Sample(
        _ticket(
            "SR-1006",
            client=("unknown", "Unknown sender", "complimentary"),
            contact=Sender(email="someone@elsewhere.example", name="someone@elsewhere.example"),
            channel="email",
            subject="Quote for a new laptop",
            priority="normal",
            disposition="dispatch",
            due_in=timedelta(hours=8),
        ),
        zone=CHICAGO,
        hours=COMPLIMENTARY_HOURS,
    ),
)

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
    for sample in SAMPLES:
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
