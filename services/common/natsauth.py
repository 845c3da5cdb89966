"""The bus users and what each may publish and subscribe: one permission map, rendered for nats-server."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.contracts import subjects as s

OPS = "ops"
SERVICE_USERS = ("intake_email", "intake_voice", "router", "notifier", "console")
USERS = (*SERVICE_USERS, OPS)
# Console replicas each keep a durable consumer on the timeline stream named `console-<replica>`, and a
# rebuild deletes and recreates it: the console user manages any consumer of FD_TIMELINE (a stream it
# may read whole anyway) and no consumer of any other stream.
CONSOLE_DURABLES = "*"
CONFIG_NAME = "nats.conf"
# nats-server joins every include path to the including file's folder (even an absolute one), so the
# passwords file sits next to nats.conf: compose mounts the secret there.
PASSWORDS_NAME = "passwords.conf"
PASSWORD_BYTES = 32  # token_urlsafe(32): 43 characters, above require_strong's 32 bytes
CHECKED_IN = Path(__file__).resolve().parents[2] / "deploy" / "nats" / CONFIG_NAME


@dataclass(frozen=True)
class Grant:
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    def __add__(self, other: Grant) -> Grant:
        return Grant(_unique(self.publish + other.publish), _unique(self.subscribe + other.subscribe))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _api(*tokens: str) -> str:
    return ".".join(("$JS.API", *tokens))


def inbox_prefix(user: str) -> str:
    """Each user gets its own reply inbox, so no service can read the answers meant for another."""
    return f"_INBOX_{user}" if user else "_INBOX"


def _publish(*subjects: str) -> Grant:
    return Grant(publish=subjects)


def _consume(stream: str, durable: str) -> Grant:
    """A durable pull consumer: create/bind it, fetch, ack. Nothing on any other consumer."""
    return Grant(
        publish=(
            _api("STREAM", "INFO", stream),
            _api("CONSUMER", "CREATE", stream, durable),
            _api("CONSUMER", "CREATE", stream, durable, ">"),
            _api("CONSUMER", "DURABLE", "CREATE", stream, durable),
            _api("CONSUMER", "INFO", stream, durable),
            _api("CONSUMER", "MSG", "NEXT", stream, durable),
            f"$JS.ACK.{stream}.{durable}.>",
        )
    )


def _read_stream(stream: str) -> Grant:
    return Grant(
        publish=(
            _api("STREAM", "INFO", stream),
            _api("STREAM", "MSG", "GET", stream),
            _api("DIRECT", "GET", stream),
            _api("DIRECT", "GET", stream, ">"),
        )
    )


def _watch(stream: str) -> Grant:
    """Ephemeral (ordered) consumers, as nats-py's KV watch and object get make them."""
    return Grant(
        publish=(
            _api("CONSUMER", "CREATE", stream),
            _api("CONSUMER", "CREATE", stream, ">"),
            _api("CONSUMER", "INFO", stream, "*"),
            _api("CONSUMER", "DELETE", stream, "*"),
            f"$JS.FC.{stream}.>",
        )
    )


def _kv(bucket: str, *, write: bool = True, watch: bool = False) -> Grant:
    grant = _read_stream(f"KV_{bucket}")
    if write:
        grant += _publish(f"$KV.{bucket}.>")
    if watch:
        grant += _watch(f"KV_{bucket}")
    return grant


def _objects(*, write: bool) -> Grant:
    stream = f"OBJ_{s.OBJ_RAW}"
    grant = _read_stream(stream) + _watch(stream)
    if write:
        # Orphaned chunks of a failed upload are purged (by subject) by the writer that left them.
        grant += _publish(f"$O.{s.OBJ_RAW}.>", _api("STREAM", "PURGE", stream))
    return grant


def _dead_letters() -> Grant:
    return _publish(s.DLQ_ALL)


def permissions() -> dict[str, Grant]:
    """What each user may do. Intakes only ever publish requests and replies: never outbox or notify."""
    grants = {
        "intake_email": _publish(s.request_subject("email")) + _objects(write=True),
        "intake_voice": _publish(
            s.request_subject("voice"),
            s.request_subject("sms"),
            s.REQUEST_AMENDED,
            s.TECH_REPLIED,
            s.OPT_OUT_CHANGED,
            s.SMS_STATUS_REPORTED,
        ),
        "router": _consume(s.STREAM_REQUESTS, "router")
        + _publish(s.NOTIFY_ALL, s.TIMELINE_ALL)
        + _dead_letters()
        + _kv(s.KV_TICKETS)
        + _kv(s.KV_THREADS)
        + _kv(s.KV_TIMERS, watch=True)
        + _kv(s.KV_ROUTER)
        + _kv(s.KV_SEQUENCES)
        + _objects(write=False),
        "notifier": sum((_consume(stream, durable) for stream, durable in s.NOTIFIER_DURABLES), Grant())
        + _publish(s.OUTBOX_ALL, s.NOTIFY_ALL, s.TIMELINE_ALL)
        + _dead_letters()
        + _kv(s.KV_OUTBOUND, watch=True)
        + _kv(s.KV_CONTACTS, watch=True)
        + _kv(s.KV_WINDOWS)
        + _kv(s.KV_TICKETS, watch=True)
        + _kv(s.KV_TIMERS, watch=True)
        + _kv(s.KV_SEEN)
        + _objects(write=False),
        "console": _consume(s.STREAM_TIMELINE, CONSOLE_DURABLES)
        + Grant(publish=(_api("CONSUMER", "DELETE", s.STREAM_TIMELINE, CONSOLE_DURABLES),))
        + _read_stream(s.STREAM_TIMELINE)
        + _publish(s.DESK_ALL)
        + _kv(s.KV_TICKETS, write=False, watch=True)
        + _kv(s.KV_CONTACTS, write=False, watch=True)
        + _kv(s.KV_TIMERS, write=False, watch=True),
    }
    result = {user: grant + Grant(subscribe=(f"{inbox_prefix(user)}.>",)) for user, grant in grants.items()}
    # The CLIs (timeline, dead letters, topology setup) act for an operator: everything.
    result[OPS] = Grant(publish=(">",), subscribe=(">",))
    return result


def manages_topology(user: str) -> bool:
    """Only ops (or a bus without users, e.g. a bare test cluster) creates and updates streams."""
    return user not in SERVICE_USERS


def visible_streams(user: str) -> tuple[str, ...]:
    """The streams whose info `user` may read: what a service waits for at start."""
    prefix = _api("STREAM", "INFO", "")
    grant = permissions().get(user, Grant())
    return _unique(subject[len(prefix) :] for subject in grant.publish if subject.startswith(prefix))


def password_variable(user: str) -> str:
    return f"FD_NATS_PASSWORD_{user.upper()}"


def _quoted(items: Sequence[str], indent: str) -> list[str]:
    # JSON strings are valid NATS config strings; quoted, `$JS...` is a subject, not a variable.
    return [f"{indent}{json.dumps(item)}" for item in items]


def render() -> str:
    """deploy/nats/nats.conf: users and permissions; the passwords come from the included file."""
    lines = [
        "# Generated by `python -m services.common.natsauth render` from services/common/natsauth.py:",
        "# edit that map, not this file (tests/deploy/test_natsauth.py checks they agree).",
        f"# Passwords: `{PASSWORDS_NAME}` next to this file (include paths are relative to it), written by",
        "# `python -m services.common.natsauth secrets DIR`. Anonymous clients are refused.",
        f'include "{PASSWORDS_NAME}"',
        "",
        "authorization {",
        "  users = [",
    ]
    for user, grant in permissions().items():
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: ${password_variable(user)}",
            "      permissions: {",
            "        publish: { allow: [",
            *_quoted(grant.publish, " " * 10),
            "        ] }",
            "        subscribe: { allow: [",
            *_quoted(grant.subscribe, " " * 10),
            "        ] }",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def render_passwords(passwords: Mapping[str, str]) -> str:
    lines = ["# Frontdesk NATS passwords, one variable per user. Keep this file 0600; never commit it."]
    lines += [f"{password_variable(user)}: {json.dumps(passwords[user])}" for user in USERS]
    return "\n".join(lines) + "\n"


def generate_passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(PASSWORD_BYTES) for user in USERS}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def write_secrets(folder: Path, passwords: Mapping[str, str]) -> None:
    """passwords.conf for nats-server, and USER.password per service (FRONTDESK_NATS_PASSWORD_FILE)."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(folder / PASSWORDS_NAME, render_passwords(passwords))
    for user in USERS:
        _write_private(folder / f"{user}.password", passwords[user] + "\n")


def ensure_secrets(folder: Path) -> dict[str, str]:
    """The passwords kept in `folder`, generated (once) when any is missing."""
    files = {user: folder / f"{user}.password" for user in USERS}
    if all(path.is_file() for path in files.values()) and (folder / PASSWORDS_NAME).is_file():
        return {user: path.read_text().strip() for user, path in files.items()}
    passwords = generate_passwords()
    write_secrets(folder, passwords)
    return passwords


def write_server_config(folder: Path, passwords: Mapping[str, str], *, extra: str = "") -> Path:
    """nats.conf (plus `extra` server settings) and its passwords in `folder`; returns the config path."""
    write_secrets(folder, passwords)
    path = folder / CONFIG_NAME
    path.write_text(render() + extra)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    root = argparse.ArgumentParser(prog="python -m services.common.natsauth", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    out = sub.add_parser("render", help="print nats.conf (or write it to --output)")
    out.add_argument("--output", type=Path)
    gen = sub.add_parser("secrets", help="write strong random passwords into DIR (refuses to overwrite)")
    gen.add_argument("folder", type=Path)
    args = root.parse_args(argv)
    if args.command == "render":
        if args.output is None:
            sys.stdout.write(render())
        else:
            args.output.write_text(render())
        return 0
    folder: Path = args.folder
    if (folder / PASSWORDS_NAME).exists():
        print(f"{folder / PASSWORDS_NAME} exists: remove it first to rotate every password", file=sys.stderr)
        return 1
    write_secrets(folder, generate_passwords())
    print(f"wrote {folder / PASSWORDS_NAME} and one USER.password per user ({', '.join(USERS)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
