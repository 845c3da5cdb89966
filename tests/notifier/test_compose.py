"""compose: the dispatch SMS carries everything a tech needs; client texts name the ticket and the time."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import msgspec

from services.contracts import Sender
from services.notifier import compose, sanitize
from tests.notifier.ticketing import NOW, ticket

NY = ZoneInfo("America/New_York")


def test_dispatch_sms_has_every_field() -> None:
    body = compose.tech_dispatch(ticket(), zone=NY, notes="Server closet key is at reception")
    lines = body.split("\n")
    assert lines[0] == "SR-1042 Acme Dental (premium)"
    assert lines[1] == "Front desk printer offline since 9am"
    assert lines[2] == "Contact: Dana Smith +15551230000"
    assert lines[3] == "Due: Mon 23 Nov 12:00 EST"  # 17:00 UTC in the desk's zone
    assert lines[4] == "Note: Server closet key is at reception"
    assert lines[5] == "Reply A to accept, ETA <min>, DELAY <min> <reason>, DONE"
    assert "EMERGENCY" not in body
    assert sanitize.septets(body) <= sanitize.SMS_MAX


def test_dispatch_sms_quotes_the_clients_last_finished_job() -> None:
    # Resolved late on 12 Nov in New York, which is already 13 Nov in UTC: the desk's date is shown.
    done = compose.last_touch("Bob Li", ticket("SR-1001"), NOW.replace(month=11, day=13, hour=3), NY)
    assert done == 'Bob Li resolved SR-1001 "Printer offline" on 11/12'
    body = compose.tech_dispatch(ticket(), zone=NY, notes="Key at reception", last_touch=done)
    assert body.split("\n")[4:6] == ["Note: Key at reception", f"Last: {done}"]
    assert sanitize.septets(body) <= sanitize.SMS_MAX


def test_dispatch_sms_flags_emergency_and_escalation_and_prefix() -> None:
    body = compose.tech_dispatch(ticket(priority="emergency"), zone=NY, escalated=True, single_ticket=False)
    assert body.startswith("SR-1042 EMERGENCY (escalated) Acme Dental")
    assert "Start with SR-1042. Reply A to accept" in body
    assert "Note:" not in body  # no notes, no empty line


def test_dispatch_sms_survives_hostile_summary() -> None:
    long = ticket(summary="Ünïcode \u201cquotes\u201d\r\nBcc: x\x00" + "y" * 600)
    body = compose.tech_dispatch(long, zone=NY)
    assert "\x00" not in body and "\r" not in body
    assert body.split("\n")[1].startswith('Ünicode "quotes" Bcc: xyyy')
    assert body.endswith("DONE")  # the reply line is never cut off by a long summary
    assert sanitize.septets(body) <= sanitize.SMS_MAX


def test_dispatch_falls_back_to_email_when_no_phone() -> None:
    t = ticket(contact=Sender(email="dana@acme.example"))
    assert "Contact: client dana@acme.example" in compose.tech_dispatch(t, zone=NY)


def test_client_texts_use_the_desk_zone() -> None:
    t = ticket()
    assert "SR-1042" in compose.client_ack(t, "A technician will respond by 12:00 PM today.")
    assert "respond by 12:00 PM today." in compose.client_ack(
        t, "A technician will respond by 12:00 PM today."
    )
    delay = compose.client_delay(t, "Ann", NOW + timedelta(hours=3), "stuck in traffic", zone=NY)
    assert delay == (
        "SR-1042: Ann is running late; new estimate Mon 23 Nov 13:00 EST. Reason: stuck in traffic. "
        "We are sorry for the wait."
    )
    assert "Mon 23 Nov 11:30 EST" in compose.client_eta(t, "Ann", NOW + timedelta(minutes=90), zone=NY)
    accepted = compose.client_accepted(
        msgspec.structs.replace(t, eta=NOW + timedelta(hours=1)), "Ann", zone=NY
    )
    assert accepted == "SR-1042: Ann is now working on your request. Expected by Mon 23 Nov 11:00 EST."
    assert "resolved" in compose.client_resolved(t, "Ann")
    missed = compose.client_missed(t, "Olivia", zone=NY)
    assert "missed our response target of Mon 23 Nov 12:00 EST" in missed and "Olivia" in missed
    late = compose.client_running_late(t, NOW + timedelta(hours=2, minutes=15), zone=NY)
    assert "new estimate Mon 23 Nov 12:15 EST" in late


def test_ops_alert_and_help_texts() -> None:
    alert = compose.ops_alert(ticket(priority="emergency"), "nobody accepted", zone=NY)
    assert alert.startswith("OPS SR-1042 EMERGENCY Acme Dental (premium): nobody accepted")
    assert "Which ticket? Open: SR-1, SR-2" in compose.tech_help(["SR-1", "SR-2"])
    assert "no open tickets" in compose.tech_help([])
    assert compose.tech_help(["SR-7"]).endswith(compose.REPLY_HELP)


def test_email_subject_carries_token_once() -> None:
    t = ticket(subject="RE: Printer offline\r\nX-Injected: 1")
    assert (
        compose.email_subject(t, "[SR-1042-abcdef12]")
        == "Re: Printer offline X-Injected: 1 [SR-1042-abcdef12]"
    )
