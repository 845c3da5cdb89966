"""The sandbox ledger as conversations: every SMS, email and call, per ticket and per phone or address,
with names beside numbers and what each caller heard. Pure: no I/O."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from services.policy.model import Policy

Direction = Literal["in", "out"]
Channel = Literal["sms", "email", "call"]
TICKET = re.compile(r"\bSR-\d+\b")
_SAY = re.compile(r"<Say[^>]*>(.*?)</Say>", re.DOTALL)
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    at: str  # ISO 8601, as the ledger recorded it
    direction: Direction  # "in": to the desk; "out": from the desk
    channel: Channel
    party: str  # the outside phone number or address
    subject: str = ""
    text: str = ""  # the message, or for a call what the caller heard and did, one step a line
    status: str = ""
    tickets: tuple[str, ...] = ()


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # "SR-1001", "+13125550150" or "jane@acme.example"
    title: str  # the key with the name beside it
    events: tuple[Event, ...]  # newest first


def brief(record: Mapping[str, Any]) -> dict[str, Any]:
    """A sent SMS as the inspection API shows it (the ledger keeps its creation instant privately)."""
    created: datetime = record["_created"]
    return {
        "sid": record["sid"],
        "to": record["to"],
        "from": record["from"],
        "body": record["body"],
        "status": record["status"],
        "error_code": record["error_code"],
        "time": created.isoformat(),
    }


def directory(policy: Policy | None) -> dict[str, str]:
    """Phone numbers and addresses with the name a person knows them by."""
    if policy is None:
        return {}
    known: dict[str, str] = {}
    ops = policy.desk.ops_contact
    for reach in (ops.phone, ops.email):
        if reach:
            known[reach] = f"{ops.name} (ops)"
    for tech in policy.techs:
        known[tech.phone] = f"{tech.name} (tech)"
        if tech.email:
            known[tech.email] = f"{tech.name} (tech)"
    for client in policy.clients:
        for contact in client.contacts:
            for reach in (contact.phone, contact.email):
                if reach:
                    known[reach] = f"{contact.name}, {client.name}"
    return known


def _tickets(*texts: str) -> tuple[str, ...]:
    return tuple(sorted({number for text in texts for number in TICKET.findall(text)}))


def _call_text(exchanges: list[Mapping[str, Any]]) -> str:
    """What the caller heard and did, step by step."""
    steps: list[str] = []
    for exchange in exchanges:
        params = exchange.get("params", {})
        if params.get("Digits"):
            steps.append(f"pressed {params['Digits']}")
        if params.get("SpeechResult"):
            steps.append(f"said \u201c{params['SpeechResult']}\u201d")
        if params.get("TranscriptionText"):
            steps.append(f"voicemail transcript: \u201c{params['TranscriptionText']}\u201d")
        twiml = str(exchange.get("twiml", ""))
        steps.extend(f"heard: {html.unescape(said.strip())}" for said in _SAY.findall(twiml))
        if "<Record" in twiml:
            steps.append("left a voicemail")
        if "<Dial" in twiml:
            steps.append("was connected to the on-call technician's phone")
    return "\n".join(steps)


def events(
    messages: Iterable[Mapping[str, Any]],
    emails: Iterable[Mapping[str, Any]],
    webhooks: Iterable[Mapping[str, Any]],
) -> list[Event]:
    """Every touch the sandbox saw, oldest first: SMS we sent, mail we relayed, texts and calls in."""
    found: list[Event] = []
    for sms in messages:
        body = str(sms.get("body", ""))
        found.append(
            Event(
                at=str(sms.get("time", "")),
                direction="out",
                channel="sms",
                party=str(sms.get("to", "")),
                text=body,
                status=str(sms.get("status", "")),
                tickets=_tickets(body),
            )
        )
    for mail in emails:
        subject, body = str(mail.get("subject", "")), str(mail.get("body", ""))
        found.append(
            Event(
                at=str(mail.get("time", "")),
                direction="out",
                channel="email",
                party=", ".join(mail.get("to", [])),
                subject=subject,
                text=body.strip(),
                tickets=_tickets(subject, body),
            )
        )
    for hook in webhooks:
        exchanges = list(hook.get("exchanges", []))
        first = exchanges[0].get("params", {}) if exchanges else {}
        kind = hook.get("kind")
        if kind not in ("sms", "call"):
            continue  # the ledger records texts and calls; anything else is no touch to show
        # A text in says what it says; a call, what the caller heard and did.
        text = str(first.get("Body", "")) if kind == "sms" else _call_text(exchanges)
        found.append(
            Event(
                at=str(hook.get("time", "")),
                direction="in",
                channel=kind,
                party=str(first.get("From", "")),
                text=text,
                tickets=_tickets(text),
            )
        )
    # At one instant, what came in goes first: a reply never precedes what it answers.
    return sorted(found, key=lambda event: (_instant(event.at), event.direction == "out"))


def _instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _EARLIEST  # an entry without a time sorts first rather than failing the page
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def titled(key: str, names: Mapping[str, str]) -> str:
    return f"{names[key]} {key}" if key in names else key


def with_call_tickets(found: list[Event]) -> list[Event]:
    """A call names no ticket; the desk's next message to that caller does (the acknowledgment of the
    request the call opened, or the update to the ticket it was about): the call joins that ticket."""
    out = list(found)
    for i, event in enumerate(out):
        if event.channel != "call" or event.tickets:
            continue
        answer = next(
            (
                later
                for later in out[i + 1 :]
                if later.party == event.party and (later.direction == "out" or later.channel == "call")
            ),
            None,
        )
        if answer is not None and answer.direction == "out" and answer.tickets:
            out[i] = msgspec.structs.replace(event, tickets=answer.tickets)
    return out


def conversations(
    found: list[Event], names: Mapping[str, str]
) -> tuple[list[Conversation], list[Conversation]]:
    """(per ticket, per phone or address), each newest activity first, events newest first."""
    by_ticket: dict[str, list[Event]] = {}
    by_party: dict[str, list[Event]] = {}
    for event in with_call_tickets(found):
        for number in event.tickets:
            by_ticket.setdefault(number, []).append(event)
        for party in (p.strip() for p in event.party.split(",")):
            if party:
                by_party.setdefault(party, []).append(event)

    def listed(groups: dict[str, list[Event]], title: bool) -> list[Conversation]:
        ordered = sorted(groups.items(), key=lambda item: _instant(item[1][-1].at), reverse=True)
        return [
            Conversation(
                key=key,
                title=titled(key, names) if title else key,
                events=tuple(reversed(items)),
            )
            for key, items in ordered
        ]

    return listed(by_ticket, False), listed(by_party, True)
