"""The router's command line: explain one decision, or check a policy file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.policy.decide import decide
from services.policy.load import PolicyError, load_policy
from services.policy.model import Policy


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.router", description="Frontdesk router")
    sub = root.add_subparsers(dest="command")
    explain = sub.add_parser("explain", help="print the routing decision for one request as JSON")
    explain.add_argument("--policy", required=True)
    explain.add_argument("--sender", required=True, help="an email address or an E.164 phone number")
    explain.add_argument("--channel", choices=("email", "voice", "sms"), default="email")
    explain.add_argument("--at", required=True, help="ISO 8601 instant; without an offset it is UTC")
    explain.add_argument("--emergency", action="store_true")
    explain.add_argument("--billable", action="store_true")
    check = sub.add_parser("check", help="validate a policy file")
    check.add_argument("--policy", required=True)
    return root


def explanation(
    policy: Policy, *, sender: str, channel: str, at: datetime, emergency: bool, billable: bool
) -> dict[str, Any]:
    email, phone = (sender, None) if "@" in sender else (None, sender)
    decision, _ = decide(policy, email=email, phone=phone, at=at, emergency=emergency, billable=billable)
    zone = ZoneInfo(policy.desk.timezone)  # people reading the CLI think in desk time
    return {
        "client": decision.client_id,
        "client_name": decision.client_name,
        "channel": channel,
        "tier": decision.tier,
        "priority": decision.priority,
        "in_hours": decision.in_hours,
        "disposition": decision.disposition,
        "notify_at": decision.notify_at.astimezone(zone).isoformat(),
        "response_due": decision.response_due.astimezone(zone).isoformat(),
        "assignee": decision.assignee,
        "oncall": decision.oncall,
        "billable": decision.billable,
        "reasons": list(decision.reasons),
    }


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run(argv: Sequence[str]) -> int:
    """Returns the exit status; 2 for usage or policy errors."""
    args = parser().parse_args(argv)
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"{args.policy}: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        counts = f"{len(policy.clients)} clients, {len(policy.techs)} techs, {len(policy.tiers)} tiers"
        print(f"{args.policy}: ok ({counts})")
        return 0
    try:
        at = parse_instant(args.at)
    except ValueError:
        print(f"--at: not an ISO 8601 instant: {args.at!r}", file=sys.stderr)
        return 2
    result = explanation(
        policy,
        sender=args.sender,
        channel=args.channel,
        at=at,
        emergency=args.emergency,
        billable=args.billable,
    )
    print(json.dumps(result, indent=2))
    return 0
