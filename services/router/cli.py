"""The router's command line: explain one decision, or check a policy file."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.common.bus import Bus
from services.common.clock import SystemClock
from services.common.config import ConfigError, load_bus
from services.contracts import subjects as s
from services.contracts.requests import Sender, ServiceRequest
from services.policy.decide import decide
from services.policy.load import PolicyError, load_policy
from services.policy.model import Policy
from services.router import routing
from services.wording import sanitize, times

DEFAULT_POLICY = "deploy/policy.example.yaml"
CURSOR_TIMEOUT = 2.0  # seconds to wait for NATS before saying "next in rotation" instead


def parser() -> argparse.ArgumentParser:
    policy = os.environ.get("FRONTDESK_POLICY", DEFAULT_POLICY)
    root = argparse.ArgumentParser(prog="python -m services.router", description="Frontdesk router")
    sub = root.add_subparsers(dest="command")
    explain = sub.add_parser("explain", help="print the routing decision for one request as JSON")
    explain.add_argument("--policy", default=policy, help=f"policy file (default FRONTDESK_POLICY: {policy})")
    explain.add_argument("--sender", required=True, help="an email address or an E.164 phone number")
    explain.add_argument("--channel", choices=("email", "voice", "sms"), default="email")
    explain.add_argument("--at", help="ISO 8601 instant; without an offset it is UTC (default: now)")
    explain.add_argument("--subject", default="", help="the request's subject (emergency keywords count)")
    explain.add_argument("--body", default="", help="what the client wrote (emergency keywords count)")
    explain.add_argument("--emergency", action="store_true", help="as if the client chose emergency")
    explain.add_argument("--billable", action="store_true")
    who = explain.add_mutually_exclusive_group()
    who.add_argument("--cursor", type=int, help="the round-robin cursor to assume (default: read from NATS)")
    who.add_argument("--offline", action="store_true", help="do not ask NATS for the live rotation cursor")
    check = sub.add_parser("check", help="validate a policy file")
    check.add_argument("--policy", default=policy, help=f"policy file (default FRONTDESK_POLICY: {policy})")
    return root


def explanation(
    policy: Policy,
    *,
    sender: str,
    channel: str,
    at: datetime,
    emergency: bool,
    billable: bool,
    cursor: int | None = None,
    cursor_source: str = "",
) -> dict[str, Any]:
    """The decision as JSON. With `cursor` None a round-robin choice is not knowable here: the live
    router holds the cursor, so the answer says "next in rotation" instead of guessing a name."""
    email, phone = (sender, None) if "@" in sender else (None, sender)

    def at_cursor(n: int) -> Any:
        return decide(
            policy, email=email, phone=phone, at=at, emergency=emergency, billable=billable, rotation_cursor=n
        )[0]

    decision = at_cursor(cursor or 0)
    rotates = decision.assignee != at_cursor((cursor or 0) + 1).assignee
    assignee: str | None = decision.assignee
    reasons = list(decision.reasons)
    which = next((i for i, reason in enumerate(reasons) if "round-robin" in reason), len(reasons) - 1)
    if rotates and cursor is None:
        assignee = "next in rotation"
        reasons[which] = (
            "Assigned to the next tech in the round-robin rotation; the live router holds the cursor "
            f"({cursor_source or 'not read'}), so who that is cannot be known here."
        )
    elif rotates:
        reasons[which] += f" (rotation cursor {cursor}, {cursor_source or 'given'})"
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
        "response_due_text": times.stamp(decision.response_due, zone),
        "assignee": assignee,
        "oncall": decision.oncall,
        "billable": decision.billable,
        "reasons": reasons,
    }


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def live_cursor(timeout: float = CURSOR_TIMEOUT) -> tuple[int | None, str]:
    """The live router's rotation cursor from KV, or None and why not (within `timeout` seconds)."""
    try:
        cfg = load_bus()
    except ConfigError as exc:
        return None, f"no bus credentials to ask NATS ({exc})"
    where = ", ".join(cfg.url)
    try:
        bus = await asyncio.wait_for(Bus.connect(cfg, "router-explain"), timeout)
    except TimeoutError:
        return None, f"NATS at {where} not reachable within {timeout:g} s"
    try:
        value, _ = await asyncio.wait_for(bus.kv_get(s.KV_ROUTER, routing.CURSOR_KEY), timeout)
    except Exception as exc:
        return None, f"cursor not readable from NATS at {where}: {exc!r}"
    finally:
        await bus.close()
    return int(value) if value else 0, f"live from NATS at {where}"


def run(argv: Sequence[str]) -> int:
    """Returns the exit status; 2 for usage or policy errors."""
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(sanitize.printable(f"{args.policy}: {exc}"), file=sys.stderr)
        return 2
    if args.command == "check":
        counts = f"{len(policy.clients)} clients, {len(policy.techs)} techs, {len(policy.tiers)} tiers"
        print(sanitize.printable(f"{args.policy}: ok ({counts})"))
        return 0
    try:
        at = parse_instant(args.at) if args.at else SystemClock().now()
    except ValueError:
        print(sanitize.printable(f"--at: not an ISO 8601 instant: {args.at!r}"), file=sys.stderr)
        return 2
    # The subject and body count the way the live router counts them (emergency keywords).
    asked = ServiceRequest(
        id="explain",
        channel=args.channel,
        received_at=at,
        sender=Sender(),
        subject=args.subject,
        body=args.body,
    )
    emergency = args.emergency or routing.is_emergency(asked, policy.emergency_keywords)
    cursor, source = args.cursor, "given with --cursor"
    if cursor is None and not args.offline:
        # The bus's retry warnings would repeat what the answer says; restored after (run() is also
        # called in-process).
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            cursor, source = asyncio.run(live_cursor())
        finally:
            logging.disable(previous)
    elif args.offline:
        source = "--offline"
    result = explanation(
        policy,
        sender=args.sender,
        channel=args.channel,
        at=at,
        emergency=emergency,
        billable=args.billable,
        cursor=cursor,
        cursor_source=source,
    )
    print(sanitize.json_printable(json.dumps(result, indent=2, ensure_ascii=False)))
    return 0
