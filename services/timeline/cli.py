"""`python -m services.timeline CLIENT_ID [--json] [--tz ZONE]`: print a client's history in order."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.bus import Bus
from services.common.config import ConfigError, load_bus
from services.policy.decide import UNKNOWN_CLIENT_ID
from services.policy.load import PolicyError, load_policy
from services.policy.model import Policy
from services.timeline.reader import as_json, read_timeline, render
from services.wording import sanitize

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # never a subject wildcard such as '>' or '*'
EXIT_UNKNOWN = 2
EXIT_UNREACHABLE = 3


def _fail(message: str, status: int) -> int:
    print(sanitize.printable(f"timeline: {message}"), file=sys.stderr)
    return status


def _policy(path: str) -> Policy | None:
    try:
        return load_policy(path)
    except (PolicyError, OSError):
        return None


async def _run(args: argparse.Namespace) -> int:
    if not CLIENT_ID.match(args.client_id):
        return _fail(f"not a client id: {args.client_id!r} (letters, digits, '-' and '_')", EXIT_UNKNOWN)
    policy = _policy(args.policy)
    try:
        zone = ZoneInfo(args.tz or (policy.desk.timezone if policy else "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return _fail(f"--tz: not an IANA time zone: {args.tz!r}", EXIT_UNKNOWN)
    try:
        bus_cfg = load_bus()
    except ConfigError as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    where = ", ".join(bus_cfg.url)
    try:
        # Bus.connect retries for services that must come back by themselves; a person waits seconds.
        bus = await asyncio.wait_for(Bus.connect(bus_cfg, "timeline-cli"), args.timeout)
    except TimeoutError:
        return _fail(
            f"cannot reach NATS at {where} within {args.timeout:g} s; is it running? (FRONTDESK_NATS_URL)",
            EXIT_UNREACHABLE,
        )
    try:
        entries = await asyncio.wait_for(read_timeline(bus, args.client_id), args.timeout + 10)
    except Exception as exc:
        return _fail(f"reading the timeline from NATS at {where} failed: {exc!r}", EXIT_UNREACHABLE)
    finally:
        await bus.close()
    known = {c.id for c in policy.clients} | {UNKNOWN_CLIENT_ID} if policy else set()
    if not entries and args.client_id not in known:
        listed = ", ".join(sorted(known)) or "(no policy loaded from FRONTDESK_POLICY)"
        return _fail(f"unknown client {args.client_id!r}; known clients: {listed}", EXIT_UNKNOWN)
    if args.json:
        sys.stdout.write(as_json(entries) + "\n")
    elif entries:
        print(render(entries, zone=zone))
    else:
        print(f"no timeline entries for {args.client_id}")  # the id matched CLIENT_ID: plain
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.timeline", description=__doc__)
    parser.add_argument("client_id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--tz", help="IANA zone for the times shown (default: the desk's, from the policy)")
    parser.add_argument(
        "--policy",
        default=os.environ.get("FRONTDESK_POLICY", "deploy/policy.example.yaml"),
        help="policy file for the desk zone and the client list (default: FRONTDESK_POLICY)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for NATS (default 5)")
    args = parser.parse_args(argv)
    # The command speaks for itself on stderr; the bus's retry and disconnect warnings are for services.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        return asyncio.run(_run(args))
    finally:
        logging.disable(previous)
