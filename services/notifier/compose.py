"""Message wording for the notifier: a ticket's facts as template values, rendered for one channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from services.contracts.tickets import Ticket
from services.wording import sanitize, times
from services.wording.catalog import Wording
from services.wording.values import FOLLOW_UP_MAX, REASON_MAX, TRANSCRIPT_MAX, ticket_values

ClientChannel = Literal["sms", "email"]
CLIENT_SMS_MAX = 2 * sanitize.SEGMENT_PART  # a client text is never billed as more than two segments
FOLDED_MAX = 2  # follow-ups folded into one dispatch: the newest ones, the rest stay on the timeline


class Folded(msgspec.Struct, frozen=True, kw_only=True):
    """What the client added before anyone was texted: it rides along with the dispatch."""

    ids: tuple[str, ...] = ()  # command ids already folded (a redelivery adds nothing)
    follow_ups: tuple[str, ...] = ()
    voicemail: str = ""
    recording_url: str = ""


def fold(
    folded: Folded, command_id: str, *, text: str = "", voicemail: str = "", recording: str = ""
) -> Folded:
    """Add one follow-up or voicemail transcript to what the dispatch will carry; idempotent by id."""
    if command_id in folded.ids:
        return folded
    return Folded(
        ids=(*folded.ids, command_id),
        follow_ups=(*folded.follow_ups, sanitize.one_line(text, FOLLOW_UP_MAX))[-FOLDED_MAX:]
        if text
        else folded.follow_ups,
        voicemail=sanitize.one_line(voicemail, TRANSCRIPT_MAX) if voicemail else folded.voicemail,
        recording_url=recording or folded.recording_url,
    )


def client_text(
    words: Wording,
    kind: str,
    ticket: Ticket,
    channel: ClientChannel,
    *,
    zone: ZoneInfo,
    now: datetime,
    desk: str,
    **values: Any,
) -> str:
    """A message to the client on the channel it will travel by, in the client's zone."""
    if isinstance(values.get("reason"), str):
        values["reason"] = sanitize.one_line(values["reason"], REASON_MAX)
    text = words.render(f"{channel}/{kind}", zone=zone, now=now, desk=desk, **ticket_values(ticket), **values)
    return sanitize.sms(text, CLIENT_SMS_MAX) if channel == "sms" else text


def tech_text(
    words: Wording, kind: str, ticket: Ticket, *, zone: ZoneInfo, now: datetime, **values: Any
) -> str:
    """A text to a tech or ops, in the desk's zone."""
    text = words.render(f"sms/{kind}", zone=zone, now=now, **ticket_values(ticket), **values)
    return sanitize.sms(text, sanitize.TECH_SMS_MAX)


def tech_dispatch(
    words: Wording,
    ticket: Ticket,
    *,
    zone: ZoneInfo,
    now: datetime,
    notes: str = "",
    last_touch: str = "",
    escalated: bool = False,
    single_ticket: bool = True,
    folded: Folded | None = None,
) -> str:
    """The SMS that hands a ticket to a tech, with whatever the client added while it waited."""
    folded = folded or Folded()
    return tech_text(
        words,
        "tech_dispatch",
        ticket,
        zone=zone,
        now=now,
        escalated=escalated,
        several=not single_ticket,
        notes=sanitize.one_line(notes, 100),
        last_touch=sanitize.one_line(last_touch, 100),
        voicemail=folded.voicemail,
        recording_url=folded.recording_url,
        follow_ups=list(folded.follow_ups),
    )


def tech_help(
    words: Wording, why: str, open_numbers: list[str], *, zone: ZoneInfo, now: datetime, named: str = ""
) -> str:
    """Help worded for a tech: which replies work, and on which of their tickets."""
    text = words.render(
        "sms/tech_help",
        zone=zone,
        now=now,
        why=why,
        open_numbers=open_numbers[:5],
        named=sanitize.one_line(named, 20),
    )
    return sanitize.sms(text)


def email_subject(ticket: Ticket, token: str) -> str:
    """Our subject carries the signed token so a reply threads even without headers."""
    base = sanitize.header(ticket.subject or ticket.summary or "Your request", 150)
    if base.lower().startswith("re:"):
        base = base[3:].strip()
    return f"Re: {base} {token}"


def last_touch(tech_name: str, ticket: Ticket, at: datetime, zone: ZoneInfo) -> str:
    """What the next tech should know about this client: who last finished what, and when."""
    what = sanitize.one_line(ticket.subject or ticket.summary or "a request", 50)
    return f'{tech_name} resolved {ticket.number} "{what}" on {times.day(at, zone)}'
