"""A small policy file in the policy library's schema, for intake_voice tests."""

from __future__ import annotations

from pathlib import Path

from services.policy.load import load_policy
from services.policy.model import Policy

POLICY_YAML = """
desk:
  name: Test Desk
  timezone: America/Chicago
  hours: office
  ops_contact: {name: Ops, email: ops@desk.example, phone: "+13125550100"}
calendars:
  office:
    timezone: America/Chicago
    week: {mon: ["08:00-17:00"], tue: ["08:00-17:00"], wed: ["08:00-17:00"],
           thu: ["08:00-17:00"], fri: ["08:00-17:00"]}
tiers:
  business:
    name: Business hours
    description: weekdays 8 AM to 5 PM
    targets:
      emergency: {respond_within: 1h, clock: business, after_hours: queue}
      normal: {respond_within: 1h, clock: business, after_hours: queue}
    billable_after_hours: {fee: "$250", respond_within: 2h}
  premium:
    name: Premium
    description: around the clock for emergencies
    targets:
      emergency: {respond_within: 1h, clock: 24x7, after_hours: page_oncall}
      normal: {respond_within: 4h, clock: business, after_hours: queue}
unknown_sender_tier: business
techs:
  - {id: tara, name: Tara, phone: "+13125550111", email: tara@desk.example}
  - {id: omar, name: Omar, phone: "+13125550112", email: omar@desk.example}
oncall:
  timezone: America/Chicago
  rotation: [tara, omar]
  handoff: {weekday: mon, time: "08:00"}
  start: 2026-01-05
clients:
  - id: acme
    name: Acme Dental
    tier: business
    contacts: [{name: Alice, email: alice@acme.example, phone: "+13125550123"}]
  - id: globex
    name: Globex
    tier: premium
    contacts: [{name: Gary, email: gary@globex.example, phone: "+13125550199"}]
emergency_keywords: [outage, down, flood]
"""


def write_policy(folder: Path) -> Policy:
    path = folder / "policy.yaml"
    path.write_text(POLICY_YAML, encoding="utf-8")
    return load_policy(path)
