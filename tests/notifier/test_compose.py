"""compose: the dispatch SMS carries everything a tech needs; client texts name the ticket and the time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from services.contracts import Sender
from services.contracts.tickets import Ticket
from services.notifier import compose
from services.wording import sanitize
from services.wording.catalog import Wording
from tests.notifier.ticketing import NOW, ticket

NY = ZoneInfo("America/New_York")
WORDS = Wording()
HELP_LINE = "Reply A to accept, ETA <min>, DELAY <min> <reason>, DONE"


def dispatch(t: Ticket, **kwargs: Any) -> str:
    return compose.tech_dispatch(WORDS, t, zone=NY, now=NOW, **kwargs)


def client(kind: str, t: Ticket, channel: compose.ClientChannel = "sms", **values: Any) -> str:
    return compose.client_text(WORDS, kind, t, channel, zone=NY, now=NOW, desk="Test Desk", **values)


def test_dispatch_sms_has_every_field() -> None:
    body = dispatch(ticket(), notes="Server closet key is at reception")
    assert body.split("\n") == [
        "SR-1042 Acme Manufacturing (premium)",
        "MES server slow on line 2",
        "Contact: Jane Roe +13125550150",
        "Due: Mon Nov 23, 2:00 PM EST",  # 19:00 UTC in the desk's zone
        HELP_LINE,
        "Note: Server closet key is at reception",
    ]
    assert "EMERGENCY" not in body


def test_dispatch_sms_quotes_the_clients_last_finished_job() -> None:
    # Resolved late on 12 Nov in New York, which is already 13 Nov in UTC: the desk's date is shown.
    done = compose.last_touch("Bob Li", ticket("SR-1001"), NOW.replace(month=11, day=13, hour=3), NY)
    assert done == 'Bob Li resolved SR-1001 "MES server slow" on Thu Nov 12'
    body = dispatch(ticket(), notes="Key at reception", last_touch=done)
    assert body.split("\n")[-2:] == ["Note: Key at reception", f"Last: {done}"]


def test_dispatch_sms_flags_emergency_and_escalation_and_prefix() -> None:
    body = dispatch(ticket(priority="emergency"), escalated=True, single_ticket=False)
    assert body.startswith("SR-1042 EMERGENCY (escalated) Acme Manufacturing")
    assert f"Start with SR-1042. {HELP_LINE}" in body
    assert "Note:" not in body  # no notes, no empty line


def test_dispatch_sms_survives_hostile_summary() -> None:
    long = ticket(summary="Ünïcode \u201cquotes\u201d\r\nBcc: x\x00\x1b[31m" + "y" * 600)
    body = dispatch(long)
    assert "\x00" not in body and "\r" not in body and "\x1b" not in body
    assert body.split("\n")[1].startswith('Ünicode "quotes" Bcc: x[31myyy')
    assert body.endswith("DONE")  # the reply line is never cut off by a long summary
    assert sanitize.septets(body) <= sanitize.TECH_SMS_MAX


def test_dispatch_carries_what_the_client_added_while_it_waited() -> None:
    folded = compose.fold(compose.Folded(), "relay:1", text="Also the scanner\x1b[2J is beeping")
    folded = compose.fold(folded, "relay:1", text="Also the scanner is beeping")  # redelivery: no-op
    folded = compose.fold(
        folded, "relay:RE1", voicemail="word " * 100, recording="https://api.twilio.test/Recordings/RE1"
    )
    body = dispatch(ticket(), folded=folded)
    assert "Follow-up: Also the scanner[2J is beeping" in body and body.count("Follow-up:") == 1
    voicemail = next(line for line in body.split("\n") if line.startswith("Voicemail: "))
    assert len(voicemail) == len('Voicemail: ""') + 200  # the first 200 characters of the transcript
    assert "Listen: https://api.twilio.test/Recordings/RE1" in body
    assert body.index("Contact:") < body.index("Voicemail:") < body.index(HELP_LINE)


def test_dispatch_without_a_name_shows_the_address() -> None:
    t = ticket(contact=Sender(email="jane@acme.example"))
    assert "Contact: jane@acme.example" in dispatch(t)


def test_client_texts_speak_to_the_client_in_their_zone() -> None:
    t = ticket()
    delay = client("client_delay", t, tech="Ann", eta=NOW + timedelta(hours=3), reason="stuck in traffic")
    assert delay == (
        "SR-1042: Ann is running late on your request; new estimate today by 1:00 PM. "
        "Reason: stuck in traffic. Sorry for the wait."
    )
    assert "today by 11:30 AM" in client("client_eta", t, tech="Ann", eta=NOW + timedelta(minutes=90))
    ahead = msgspec.structs.replace(t, eta=NOW + timedelta(hours=1))
    accepted = client("client_accepted", ahead, tech="Ann", eta=ahead.eta)
    assert (
        accepted
        == "SR-1042: Ann is now working on your request and expects to be with you today by 11:00 AM."
    )
    resolved = client("client_resolved", t, tech="Ann", reopen_until=NOW + timedelta(days=3))
    assert "Reply by Thu Nov 26, 10:00 AM EST and we will reopen it" in resolved
    missed = client("client_missed", t, ops_name="Olivia")
    assert "missed our promise to respond today by 2:00 PM" in missed and "Olivia" in missed
    late = client("client_running_late", t, estimate=NOW + timedelta(hours=2, minutes=15))
    assert "new estimate today by 12:15 PM" in late


def test_client_ack_by_email_and_by_sms() -> None:
    t = ticket()
    values = {
        "disposition": "dispatch",
        "respond_by": NOW + timedelta(hours=2),
        "hours": "weekdays",
        "fee": None,
    }
    sms = client("client_ack", t, "sms", fee_within=None, **values)
    assert sms == (
        "Hi Jane, we have your request as ticket SR-1042.\n"
        "A technician will respond today by 12:00 PM.\nReply here to add details."
    )
    assert sanitize.segments(sms) == 1
    email = client("client_ack", t, "email", fee_within=None, **values)
    assert email.startswith("Hello Jane,\n\nWe have your request")
    assert "Your plan covers weekdays." in email and email.endswith("Test Desk\n")


def test_ops_alert_and_help_texts() -> None:
    alert = compose.tech_text(
        WORDS,
        "ops_alert",
        ticket(priority="emergency"),
        zone=NY,
        now=NOW,
        what="nobody accepted",
        assignee=None,
    )
    assert alert.startswith("OPS SR-1042 EMERGENCY Acme Manufacturing (premium): nobody accepted")
    assert "Assignee: none; due Mon Nov 23, 2:00 PM EST" in alert

    def help_text(why: str, numbers: list[str], named: str = "") -> str:
        return compose.tech_help(WORDS, why, numbers, zone=NY, now=NOW, named=named)

    assert "Which ticket? Open: SR-1, SR-2" in help_text("ambiguous", ["SR-1", "SR-2"])
    no_tickets = help_text("no open tickets", [])
    assert "no open tickets assigned to you" in no_tickets and "with us" not in no_tickets
    assert help_text("not understood", ["SR-7"]).endswith(HELP_LINE)
    assert (
        help_text("no open ticket named", ["SR-7"], named="SR-9") == "SR-9 is not open for you. Open: SR-7."
    )


def test_email_subject_carries_token_once() -> None:
    t = ticket(subject="RE: Printer offline\r\nX-Injected: 1")
    assert (
        compose.email_subject(t, "[SR-1042-abcdef12]")
        == "Re: Printer offline X-Injected: 1 [SR-1042-abcdef12]"
    )
