"""Message wording: what techs, clients and the ops desk read, in the desk's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.contracts.tickets import Ticket
from services.notifier import sanitize

REPLY_HELP = "Reply A to accept, ETA <min>, DELAY <min> <reason>, DONE"


def local_time(instant: datetime, zone: ZoneInfo) -> str:
    """'Mon 23 Nov 10:30 EST': the zone abbreviation avoids 'whose 10:30?' questions."""
    return instant.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def due_of(ticket: Ticket) -> datetime:
    """The current commitment: a DELAY moves response_due away from the routing decision."""
    return ticket.response_due or ticket.decision.response_due


def _callback(ticket: Ticket) -> str:
    contact = ticket.contact
    name = contact.name or "client"
    reach = contact.phone or contact.email or "no callback given"
    return f"{name} {reach}"


def tech_dispatch(
    ticket: Ticket,
    *,
    zone: ZoneInfo,
    notes: str = "",
    last_touch: str = "",
    escalated: bool = False,
    single_ticket: bool = True,
) -> str:
    """The SMS that hands a ticket to a tech: everything needed to act without opening a laptop."""
    decision = ticket.decision
    head = ticket.number
    if decision.priority == "emergency":
        head += " EMERGENCY"
    if escalated:
        head += " (escalated)"
    lines = [
        f"{head} {decision.client_name} ({decision.tier})",
        sanitize.one_line(ticket.summary or ticket.subject or "(no summary)", 120),
        f"Contact: {sanitize.one_line(_callback(ticket), 80)}",
        f"Due: {local_time(due_of(ticket), zone)}",
    ]
    if notes.strip():
        lines.append(f"Note: {sanitize.one_line(notes, 100)}")
    if last_touch.strip():
        lines.append(f"Last: {sanitize.one_line(last_touch, 100)}")
    # With several open tickets the tech must say which one; show the prefix form.
    prefix = "" if single_ticket else f"Start with {ticket.number}. "
    lines.append(prefix + REPLY_HELP)
    return sanitize.sms("\n".join(lines))


def tech_relay(ticket: Ticket, summary: str) -> str:
    return sanitize.sms(
        f"{ticket.number} client follow-up: {sanitize.one_line(summary, 200)}\n"
        f"Contact: {sanitize.one_line(_callback(ticket), 80)}"
    )


def tech_help(open_numbers: list[str]) -> str:
    if len(open_numbers) > 1:
        which = ", ".join(open_numbers[:5])
        return sanitize.sms(
            f"Which ticket? Open: {which}. Start with the number, e.g. {open_numbers[0]} A. {REPLY_HELP}"
        )
    if not open_numbers:
        return sanitize.sms("You have no open tickets with us. Contact the desk if this is wrong.")
    return sanitize.sms(f"Sorry, not understood for {open_numbers[0]}. {REPLY_HELP}")


def client_ack(ticket: Ticket, coverage_sentence: str) -> str:
    """Right after routing: we have it, here is the number, here is what happens and by when."""
    subject = sanitize.one_line(ticket.subject or ticket.summary, 80)
    about = f' about "{subject}"' if subject else ""
    return (
        f"We received your request{about} and opened ticket {ticket.number}. "
        f"{sanitize.one_line(coverage_sentence, 300)} "
        f"Reply to this message to add details; please keep {ticket.number} in the subject."
    )


def client_accepted(ticket: Ticket, tech_name: str, *, zone: ZoneInfo) -> str:
    text = f"{ticket.number}: {tech_name} is now working on your request."
    if ticket.eta is not None:
        text += f" Expected by {local_time(ticket.eta, zone)}."
    return text


def client_eta(ticket: Ticket, tech_name: str, eta: datetime, *, zone: ZoneInfo) -> str:
    return f"{ticket.number}: {tech_name} expects to be with you by {local_time(eta, zone)}."


def client_delay(ticket: Ticket, tech_name: str, new_time: datetime, reason: str, *, zone: ZoneInfo) -> str:
    text = f"{ticket.number}: {tech_name} is running late; new estimate {local_time(new_time, zone)}."
    if reason.strip():
        text += f" Reason: {sanitize.one_line(reason, 120)}."
    return text + " We are sorry for the wait."


def client_running_late(ticket: Ticket, new_estimate: datetime, *, zone: ZoneInfo) -> str:
    """Sent by the warn timer before the target passes with nobody on it yet."""
    return (
        f"{ticket.number}: we are running late on your request; new estimate "
        f"{local_time(new_estimate, zone)}. Our operations desk has been alerted."
    )


def client_missed(ticket: Ticket, ops_name: str, *, zone: ZoneInfo) -> str:
    """The target passed without a tech accepting: say so, and what happens now."""
    return (
        f"{ticket.number}: we missed our response target of {local_time(due_of(ticket), zone)}. "
        f"{ops_name} on our operations desk now owns your request and will contact you directly."
    )


def client_resolved(ticket: Ticket, tech_name: str) -> str:
    return (
        f"{ticket.number}: {tech_name} has marked your request resolved. "
        "If anything is still wrong, reply to this message and we will reopen it."
    )


def ops_alert(ticket: Ticket, what: str, *, zone: ZoneInfo) -> str:
    decision = ticket.decision
    flag = " EMERGENCY" if decision.priority == "emergency" else ""
    return sanitize.sms(
        f"OPS {ticket.number}{flag} {decision.client_name} ({decision.tier}): "
        f"{sanitize.one_line(what, 160)}\n"
        f"Assignee: {ticket.assignee or 'none'}; due {local_time(due_of(ticket), zone)}\n"
        f"Contact: {sanitize.one_line(_callback(ticket), 80)}"
    )


def email_subject(ticket: Ticket, token: str) -> str:
    """Our subject carries the signed token so a reply threads even without headers."""
    base = sanitize.header(ticket.subject or ticket.summary or "Your request", 150)
    if base.lower().startswith("re:"):
        base = base[3:].strip()
    return f"Re: {base} {token}"


def last_touch(tech_name: str, ticket: Ticket, at: datetime, zone: ZoneInfo) -> str:
    """What the next tech should know about this client: who last finished what, and when."""
    what = sanitize.one_line(ticket.subject or ticket.summary or "a request", 50)
    return f'{tech_name} resolved {ticket.number} "{what}" on {at.astimezone(zone):%m/%d}'
