"""The console's users file: `name:role:argon2-hash` per line, roles viewer and dispatcher."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Literal

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Role = Literal["viewer", "dispatcher"]
ROLES: tuple[Role, ...] = ("viewer", "dispatcher")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_PASSWORD = 1024  # argon2 hashes anything, but nobody needs more, and hashing costs memory
_hasher = PasswordHasher()


class UsersError(ValueError):
    pass


class User(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    hash: str

    @property
    def may_act(self) -> bool:
        return self.role == "dispatcher"


def hash_password(password: str) -> str:
    if not password or len(password) > MAX_PASSWORD:
        raise UsersError(f"password: 1 to {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def parse_users(text: str, source: str = "users file") -> dict[str, User]:
    """Errors name the line; blank lines and `#` comments are skipped."""
    users: dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise UsersError(f"{source}:{number}: expected name:role:hash")
        name, role, hashed = parts
        if not NAME.match(name):
            raise UsersError(f"{source}:{number}: bad user name {name!r}")
        if role not in ROLES:
            raise UsersError(f"{source}:{number}: role must be viewer or dispatcher, not {role!r}")
        if not hashed.startswith("$argon2"):
            raise UsersError(f"{source}:{number}: the hash must be an argon2 hash")
        users[name] = User(name=name, role=role, hash=hashed)
    return users


def load_users(path: str) -> dict[str, User]:
    return parse_users(Path(path).read_text(encoding="utf-8"), path)


def format_users(users: dict[str, User]) -> str:
    return "".join(f"{u.name}:{u.role}:{u.hash}\n" for u in sorted(users.values(), key=lambda u: u.name))


def set_user(path: str, name: str, role: str, password: str) -> None:
    """Add or replace one user in the file (created when missing), keeping the others."""
    if not NAME.match(name):
        raise UsersError(f"user name: lower-case letters, digits, . _ - (got {name!r})")
    if role not in ROLES:
        raise UsersError(f"role must be viewer or dispatcher, not {role!r}")
    file = Path(path)
    users = load_users(path) if file.exists() else {}
    users[name] = User(name=name, role=role, hash=hash_password(password))
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(format_users(users), encoding="utf-8")
    file.chmod(0o600)


def _unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def verify(users: dict[str, User], name: str, password: str) -> User | None:
    """The user when the password matches; unknown names cost one hash too (no timing oracle)."""
    user = users.get(name)
    if len(password) > MAX_PASSWORD:
        return None
    target = user.hash if user is not None else _DUMMY
    try:
        _hasher.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


# Unknown names are checked against this hash, so they cost what a real check costs (no timing oracle).
# The work of a check depends on the parameters in the hash, not on its bytes: no hashing at import.
_DUMMY = (
    f"$argon2id$v=19$m={_hasher.memory_cost},t={_hasher.time_cost},p={_hasher.parallelism}"
    f"${_unpadded(bytes(_hasher.salt_len))}${_unpadded(bytes(_hasher.hash_len))}"
)
