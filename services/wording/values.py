"""What templates may name about a ticket, cleaned and bounded once so every message agrees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.contracts.tickets import Ticket
from services.policy.decide import UNKNOWN_CLIENT_ID
from services.wording import sanitize

# Bounds on free text inside messages (a client SMS stays within two segments with all of them full).
NAME_MAX = 40
REASON_MAX = 120
FOLLOW_UP_MAX = 200
TRANSCRIPT_MAX = 200  # the first 200 characters of a voicemail transcript go into the tech's SMS


def due_of(ticket: Ticket) -> datetime:
    """The current commitment: a DELAY moves response_due away from the routing decision."""
    return ticket.response_due or ticket.decision.response_due


def first_name(name: str | None) -> str:
    """'Jane' from 'Jane Roe'; nothing from a phone number or an address used as a name."""
    word = (name or "").strip().split(" ")[0] if name else ""
    return sanitize.one_line(word, 20) if word and word[0].isalpha() and "@" not in word else ""


def ticket_values(ticket: Ticket) -> dict[str, Any]:
    """The values every ticket message may use; free text is one line and bounded here."""
    contact, decision = ticket.contact, ticket.decision
    reach = contact.phone or contact.email or ""
    name = sanitize.one_line(contact.name or "", NAME_MAX)
    return {
        "number": ticket.number,
        "known": ticket.client_id != UNKNOWN_CLIENT_ID,
        "client_name": sanitize.one_line(decision.client_name, 60),
        "tier": decision.tier,
        "emergency": decision.priority == "emergency",
        "first_name": first_name(contact.name),
        "contact": (reach if name in ("", reach) else f"{name} {reach}".strip()) or "no callback given",
        "contact_name": name or reach or "the client",
        "reach": reach,
        # The client's own subject line (email only: call and SMS subjects are our words about them).
        "subject": sanitize.one_line(ticket.subject, 80) if ticket.channel == "email" else "",
        "summary": sanitize.one_line(ticket.summary or ticket.subject or "(no summary)", 120),
        "due": due_of(ticket),
    }
