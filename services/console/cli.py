"""Console commands for ops: rebuild the read model, add a user, hash a password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from services.common.config import ConfigError
from services.console.config import load_config
from services.console.users import ROLES, UsersError, hash_password, set_user


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UsersError("password: the two entries differ")
    return first


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.console")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rebuild", help="drop this replica's read model and replay the timeline and tickets")
    add = commands.add_parser("adduser", help="add or replace a user in a users file")
    add.add_argument("file")
    add.add_argument("name")
    add.add_argument("role", choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    hashing = commands.add_parser("hash-password", help="print an argon2 hash for a users file line")
    hashing.add_argument("--password-stdin", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "rebuild":
            from services.console.app import rebuild

            events, tickets = asyncio.run(rebuild(load_config()))
            print(f"rebuilt: {events} timeline events, {tickets} tickets")
        elif args.command == "adduser":
            set_user(args.file, args.name, args.role, _password(args.password_stdin))
            print(f"{args.name} ({args.role}) written to {args.file}")
        else:
            print(hash_password(_password(args.password_stdin)))
    except (UsersError, ConfigError, OSError) as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    return 0
