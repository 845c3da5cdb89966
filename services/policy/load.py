"""Read and validate a policy file; every error names the field path it is about."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import phonenumbers
import yaml

from services.policy.calendar import BusinessCalendar, parse_clock
from services.policy.model import Calendar, Policy, Tier

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")
_DURATION_KEYS = frozenset({"respond_within", "ack_timeout", "warn_before", "min_interval", "reopen_window"})


class PolicyError(ValueError):
    """An invalid policy; the message starts with the field path, e.g. "clients[1].tier: ..."."""


def parse_duration(value: object, path: str) -> str:
    """'2h30m' -> an ISO 8601 duration msgspec decodes as a timedelta."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"PT{int(value)}S"
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            total = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            return f"PT{int(total.total_seconds())}S"
    raise PolicyError(f"{path}: expected a duration like '1h', '30m', '90s' or '2h30m', got {value!r}")


def _durations(node: Any, path: str) -> Any:
    # Only the known duration keys are rewritten, so an id such as "5m" is never mistaken for one.
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if key in _DURATION_KEYS and value is not None:
                out[key] = parse_duration(value, child)
            else:
                out[key] = _durations(value, child)
        return out
    if isinstance(node, list):
        return [_durations(item, f"{path}[{i}]") for i, item in enumerate(node)]
    return node


def parse_policy(text: str) -> Policy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"$: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError("$: the policy must be a mapping")
    data = _durations(raw, "")
    try:
        policy = msgspec.convert(data, Policy, strict=False)
    except msgspec.ValidationError as exc:
        raise _named(exc, data) from None
    _check(policy)
    return policy


def _named(exc: msgspec.ValidationError, data: dict[str, Any]) -> PolicyError:
    """msgspec's message with its path first; dict keys (shown as [...]) are filled in by name."""
    message = str(exc)
    if " - at `$" not in message:
        return PolicyError(f"$: {message}")
    reason, _, where = message.rpartition(" - at `$")
    path = where.rstrip("`").lstrip(".") or "$"
    for field, kind in (("calendars", Calendar), ("tiers", Tier)):
        entries = data.get(field)
        if path.startswith(f"{field}[...]") and isinstance(entries, dict):
            for name, value in entries.items():
                try:
                    msgspec.convert(value, kind, strict=False)
                except msgspec.ValidationError:
                    path = path.replace("[...]", f".{name}", 1)
                    break
    return PolicyError(f"{path}: {reason}")


def load_policy(path: str | Path) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"$: cannot read policy file {path}: {exc.strerror}") from None
    return parse_policy(text)


def _zone(value: str, path: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{path}: unknown IANA time zone {value!r}") from None


def _phone(value: str, path: str) -> None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise PolicyError(f"{path}: {value!r} is not an E.164 phone number") from None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value or not phonenumbers.is_possible_number(number):
        raise PolicyError(f"{path}: {value!r} is not an E.164 phone number (e.g. +13125550101)")


def _check(p: Policy) -> None:
    """Cross-references msgspec cannot see: names that must exist, zones, phones, clocks."""
    _zone(p.desk.timezone, "desk.timezone")
    if p.desk.hours not in p.calendars:
        raise PolicyError(f"desk.hours: unknown calendar {p.desk.hours!r}")
    if p.desk.ops_contact.phone:
        _phone(p.desk.ops_contact.phone, "desk.ops_contact.phone")
    for name, cal in p.calendars.items():
        _zone(cal.timezone, f"calendars.{name}.timezone")
        for day in cal.week:
            if day not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
                raise PolicyError(f"calendars.{name}.week.{day}: unknown weekday (use mon..sun)")
        try:
            BusinessCalendar(cal)
        except (ValueError, NotImplementedError, KeyError) as exc:
            raise PolicyError(f"calendars.{name}: {exc}") from None
        if cal.holidays is not None:
            try:
                # Unknown country or subdivision codes only surface when a year is looked up.
                BusinessCalendar(cal).is_holiday(date(2026, 1, 5))
            except NotImplementedError as exc:
                raise PolicyError(f"calendars.{name}.holidays: {exc}") from None
    if p.unknown_sender_tier not in p.tiers:
        raise PolicyError(f"unknown_sender_tier: unknown tier {p.unknown_sender_tier!r}")
    tech_ids = set()
    for i, tech in enumerate(p.techs):
        if tech.id in tech_ids:
            raise PolicyError(f"techs[{i}].id: duplicate tech id {tech.id!r}")
        tech_ids.add(tech.id)
        _phone(tech.phone, f"techs[{i}].phone")
    _zone(p.oncall.timezone, "oncall.timezone")
    if not p.oncall.rotation:
        raise PolicyError("oncall.rotation: needs at least one tech")
    for i, tech_id in enumerate(p.oncall.rotation):
        if tech_id not in tech_ids:
            raise PolicyError(f"oncall.rotation[{i}]: unknown tech {tech_id!r}")
    try:
        parse_clock(p.oncall.handoff.time)
    except ValueError as exc:
        raise PolicyError(f"oncall.handoff.time: {exc}") from None
    for i, override in enumerate(p.oncall.overrides):
        if override.tech not in tech_ids:
            raise PolicyError(f"oncall.overrides[{i}].tech: unknown tech {override.tech!r}")
        if override.to <= override.from_:
            raise PolicyError(f"oncall.overrides[{i}].to: must be after 'from'")
    client_ids = set()
    for i, client in enumerate(p.clients):
        where = f"clients[{i}]"
        if client.id in client_ids or client.id == "unknown":
            raise PolicyError(f"{where}.id: duplicate or reserved client id {client.id!r}")
        client_ids.add(client.id)
        if client.tier not in p.tiers:
            raise PolicyError(f"{where}.tier: unknown tier {client.tier!r}")
        if client.timezone is not None:
            _zone(client.timezone, f"{where}.timezone")
        if client.primary_tech is not None and client.primary_tech not in tech_ids:
            raise PolicyError(f"{where}.primary_tech: unknown tech {client.primary_tech!r}")
        if client.assignment == "assigned" and client.primary_tech is None:
            raise PolicyError(f"{where}.primary_tech: required when assignment is 'assigned'")
        for j, tech_id in enumerate(client.excluded_techs):
            if tech_id not in tech_ids:
                raise PolicyError(f"{where}.excluded_techs[{j}]: unknown tech {tech_id!r}")
        for j, contact in enumerate(client.contacts):
            if contact.phone:
                _phone(contact.phone, f"{where}.contacts[{j}].phone")
            if contact.email is None and contact.phone is None:
                raise PolicyError(f"{where}.contacts[{j}]: needs an email or a phone")
        eligible = [
            t
            for t in p.techs
            if t.id not in client.excluded_techs and set(client.skills_needed) <= set(t.skills)
        ]
        if client.assignment == "rotate" and not eligible:
            raise PolicyError(f"{where}.skills_needed: no tech has all of {list(client.skills_needed)}")
