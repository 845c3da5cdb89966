"""What the console's pages show, gathered from the read model and the policy (no HTTP, no NATS)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from services.console import report as reporting
from services.console.clocks import TicketClock, clock_of, load_by_tech
from services.console.schedule import Shift, next_handoff, shifts
from services.console.store import Store
from services.contracts.events import TimelineEntry
from services.contracts.tickets import Ticket
from services.policy.coverage import Coverage, describe
from services.policy.decide import oncall_at, span_text
from services.policy.model import Policy
from services.wording import times

SCHEDULE_WEEKS = 6
MAX_REPORT_DAYS = 366
# Timeline kinds that are a message in or out, and which way it went.
INBOUND = {"request_received", "request_amended", "threaded", "bounce_recorded", "auto_reply_recorded"}
OUTBOUND = {"ack_sent", "tech_notified", "delay_update_sent", "escalated", "breached", "resolved"}
REPLIES = {"tech_accepted", "eta_given"}


class Row(msgspec.Struct, frozen=True, kw_only=True):
    ticket: Ticket
    clock: TicketClock


class Message(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    direction: str  # "in" (client), "out" (to tech or client), "reply" (tech's SMS)
    text: str
    status: str  # what we know of its delivery


class OncallNow(msgspec.Struct, frozen=True, kw_only=True):
    now: str
    next: Shift | None
    shifts: list[Shift]
    load: dict[str, int]


class RangeError(ValueError):
    """A report range the page cannot serve; the message names the field."""


class Desk:
    def __init__(self, policy: Policy, store: Store) -> None:
        self.policy = policy
        self.store = store
        self.zone = ZoneInfo(policy.desk.timezone)

    def local(self, instant: datetime | None) -> str:
        return "" if instant is None else instant.astimezone(self.zone).strftime("%a %d %b %H:%M %Z")

    def rows(self, now: datetime) -> list[Row]:
        warn = self.policy.delay_updates.warn_before
        rows = []
        for ticket in self.store.open_tickets():
            due = ticket.response_due or ticket.decision.response_due
            clock = clock_of(ticket, now, warn_before=warn, local=self.local(due))
            rows.append(Row(ticket=ticket, clock=clock))
        return rows

    def oncall(self, now: datetime) -> OncallNow:
        tickets = self.store.open_tickets()
        return OncallNow(
            now=oncall_at(self.policy, now),
            next=next_handoff(self.policy, now),
            shifts=shifts(self.policy, now, now + timedelta(weeks=SCHEDULE_WEEKS)),
            load=load_by_tech(tickets, [t.id for t in self.policy.techs]),
        )

    def tech_name(self, tech_id: str | None) -> str:
        tech = self.policy.tech(tech_id) if tech_id else None
        return tech.name if tech is not None else (tech_id or "nobody")

    def messages(self, events: list[TimelineEntry]) -> list[Message]:
        failures = [e for e in events if e.kind == "message_failed"]
        found = []
        for event in events:
            if event.kind in INBOUND:
                found.append(Message(at=event.at, direction="in", text=event.text, status="received"))
            elif event.kind in REPLIES:
                found.append(Message(at=event.at, direction="reply", text=event.text, status="received"))
            elif event.kind in OUTBOUND or (event.kind == "note" and "update sent" in event.text):
                later = [f for f in failures if f.at >= event.at]
                status = f"failed: {later[0].text}" if later else "sent, no failure reported"
                found.append(Message(at=event.at, direction="out", text=event.text, status=status))
        return found

    def coverage(self, client_id: str, now: datetime) -> tuple[str, str]:
        """What the client's plan covers right now, for a normal request and for an emergency."""
        client = self.policy.client(client_id)
        normal = describe(self.policy, client, now, emergency=False)
        urgent = describe(self.policy, client, now, emergency=True)
        return self._covers(normal, now), self._covers(urgent, now)

    def _covers(self, coverage: Coverage, now: datetime) -> str:
        due = times.by(coverage.respond_by, self.zone, now)
        if coverage.disposition == "dispatch":
            said = f"Dispatched to a tech now; response {due}."
        elif coverage.disposition == "page_oncall":
            said = f"The on-call tech is paged now; response {due}."
        else:
            said = f"Queued until the desk opens; response {due}."
        if (offer := coverage.offer) is not None:
            within = span_text(offer.respond_within)
            said += f" Billable after-hours option: {offer.fee}, response within {within}."
        return f"{said} Plan: {coverage.hours_text}."

    def report_range(self, start: str | None, end: str | None, today: date) -> tuple[datetime, datetime]:
        """Dates are whole days in the desk's zone; `to` is inclusive. Default: the last 30 days."""
        try:
            first = date.fromisoformat(start) if start else today - timedelta(days=29)
        except ValueError:
            raise RangeError("from: expected a date like 2026-11-01") from None
        try:
            last = date.fromisoformat(end) if end else today
        except ValueError:
            raise RangeError("to: expected a date like 2026-11-30") from None
        if last < first:
            raise RangeError("to: must not be before from")
        if (last - first).days >= MAX_REPORT_DAYS:
            raise RangeError(f"to: a report covers at most {MAX_REPORT_DAYS} days")
        begin = datetime(first.year, first.month, first.day, tzinfo=self.zone)
        after = last + timedelta(days=1)
        return begin, datetime(after.year, after.month, after.day, tzinfo=self.zone)

    def report(self, start: datetime, end: datetime, now: datetime) -> reporting.Report:
        rows = self.store.report_rows(start, end)
        arrivals = self.store.arrivals(start, end)
        return reporting.build(rows, arrivals, start=start, end=end, now=now, zone=self.zone)
