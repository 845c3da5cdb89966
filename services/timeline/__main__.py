"""`python -m services.timeline CLIENT_ID [--json] [--tz ZONE]`: print a client's history in order."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from services.common.bus import Bus
from services.common.config import load_bus
from services.timeline.reader import read_timeline, render


async def _run(args: argparse.Namespace) -> int:
    bus = await Bus.connect(load_bus(), "timeline-cli")
    try:
        entries = await read_timeline(bus, args.client_id)
    finally:
        await bus.close()
    if args.json:
        sys.stdout.write(msgspec.json.encode(entries).decode() + "\n")
    elif entries:
        print(render(entries, tz=args.tz))
    else:
        print(f"no timeline entries for {args.client_id}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.timeline", description=__doc__)
    parser.add_argument("client_id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--tz", help="IANA zone for the times shown (default UTC)")
    return asyncio.run(_run(parser.parse_args()))


raise SystemExit(main())
