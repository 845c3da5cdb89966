"""The policy file model: frozen msgspec Structs mirroring deploy/policy.example.yaml."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

import msgspec

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    email: str | None = None
    phone: str | None = None  # E.164
    # None: answer on the channel the request came in on; "email": answer calls and texts by email.
    preferred: Literal["email", "sms", "voice"] | None = None


class Desk(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    timezone: str
    hours: str  # name of the calendar that defines business hours
    ops_contact: Contact


class HolidaySource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    country: str
    subdivision: str | None = None


class Calendar(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timezone: str
    week: dict[str, tuple[str, ...]]  # "mon": ("08:00-17:00",)
    holidays: HolidaySource | None = None
    dates: tuple[date, ...] = ()  # extra closed days
    open: tuple[date, ...] = ()  # days open despite a holiday


class Target(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    respond_within: timedelta
    clock: Literal["24x7", "business"] = "business"
    after_hours: Literal["page_oncall", "queue"] = "queue"


class Targets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    emergency: Target
    normal: Target


class Billable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fee: str
    respond_within: timedelta


class Tier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    targets: Targets
    billable_after_hours: Billable | None = None
    description: str = ""  # for humans, e.g. "weekdays 8 AM to 5 PM"


class Tech(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    phone: str  # E.164
    email: str
    skills: tuple[str, ...] = ()


class Handoff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    weekday: Weekday
    time: str  # "08:00", local to Oncall.timezone


class Override(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tech: str
    # Naive values are local to Oncall.timezone; the window is half-open [from, to).
    from_: datetime = msgspec.field(name="from")
    to: datetime


class Oncall(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timezone: str
    rotation: tuple[str, ...]
    handoff: Handoff
    start: date
    overrides: tuple[Override, ...] = ()
    ack_timeout: timedelta = timedelta(minutes=10)


class Client(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    tier: str
    timezone: str | None = None
    domains: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    assignment: Literal["assigned", "rotate"] = "rotate"
    primary_tech: str | None = None
    excluded_techs: tuple[str, ...] = ()
    skills_needed: tuple[str, ...] = ()
    notes: str = ""


class DelayUpdates(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    warn_before: timedelta = timedelta(minutes=15)
    min_interval: timedelta = timedelta(minutes=30)


class Policy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    desk: Desk
    calendars: dict[str, Calendar]
    tiers: dict[str, Tier]
    unknown_sender_tier: str
    techs: tuple[Tech, ...]
    oncall: Oncall
    clients: tuple[Client, ...] = ()
    emergency_keywords: tuple[str, ...] = ()
    delay_updates: DelayUpdates = DelayUpdates()
    # A client's message this long after a ticket was resolved reopens it; later, it opens a new one.
    reopen_window: timedelta = timedelta(days=3)

    def tech(self, tech_id: str) -> Tech | None:
        return next((t for t in self.techs if t.id == tech_id), None)

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.id == client_id), None)
