"""`python -m services.deadletters list|replay`: what consumers gave up on, and sending it back (ops)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.bus import Bus, PublishFailed
from services.common.config import load_bus
from services.common.terminal import printable
from services.deadletters.letters import read, render, replay


async def _run(args: argparse.Namespace) -> int:
    bus = await Bus.connect(load_bus(), "deadletters-cli")
    try:
        letters = await read(bus)
        if args.command == "list":
            print(render(letters) if letters else "no dead letters")
            return 0
        wanted = set(args.seq)
        chosen = letters if args.all else [letter for letter in letters if letter.seq in wanted]
        missing = wanted - {letter.seq for letter in chosen}
        failed = 0
        for letter in chosen:
            try:
                await replay(bus, letter)
                print(f"replayed {letter.seq} to {printable(letter.subject)}")
            except (PublishFailed, ValueError) as exc:
                failed += 1
                print(f"not replayed {letter.seq}: {printable(str(exc))}", file=sys.stderr)
        for seq in sorted(missing):
            print(f"no dead letter {seq}", file=sys.stderr)
        return 1 if failed or missing else 0
    finally:
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.deadletters", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every dead letter (escaped), oldest first")
    again = sub.add_parser("replay", help="publish dead letters to their original subject, then delete them")
    again.add_argument("seq", nargs="*", type=int, help="dead-letter sequence numbers (from `list`)")
    again.add_argument("--all", action="store_true", help="replay every dead letter")
    args = parser.parse_args(argv)
    if args.command == "replay" and not args.all and not args.seq:
        parser.error("replay: give sequence numbers or --all")
    return asyncio.run(_run(args))
