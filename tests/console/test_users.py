"""The users file: argon2 hashes, roles, errors that name the line; the CLI that writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import extract_parameters

from services.console import users as users_module
from services.console.users import UsersError, hash_password, load_users, parse_users, set_user, verify

ROOT = Path(__file__).resolve().parents[2]


def test_set_user_writes_an_argon2_hash_that_verifies(tmp_path: Path) -> None:
    path = str(tmp_path / "users")
    set_user(path, "dina", "dispatcher", "correct horse")
    set_user(path, "vera", "viewer", "battery staple")
    set_user(path, "dina", "dispatcher", "new password")  # replaced, not duplicated
    users = load_users(path)
    assert sorted(users) == ["dina", "vera"] and users["dina"].hash.startswith("$argon2id$")
    assert "new password" not in Path(path).read_text()
    assert verify(users, "dina", "new password") == users["dina"]
    assert verify(users, "dina", "correct horse") is None
    assert verify(users, "nobody", "x") is None
    assert (Path(path).stat().st_mode & 0o777) == 0o600


def test_an_unknown_name_is_checked_with_the_same_parameters_as_a_real_hash() -> None:
    # The work of an argon2 check is set by the parameters in the hash: equal parameters, equal cost.
    assert extract_parameters(users_module._DUMMY) == extract_parameters(hash_password("x"))
    assert verify({}, "nobody", "x") is None


def test_bad_lines_are_named() -> None:
    with pytest.raises(UsersError, match=r"users file:2: role must be viewer or dispatcher"):
        parse_users("# ops\nbob:admin:$argon2id$x\n")
    with pytest.raises(UsersError, match=r":1: expected name:role:hash"):
        parse_users("bob")
    with pytest.raises(UsersError, match=r":1: the hash must be an argon2 hash"):
        parse_users("bob:viewer:plaintext")


def adduser(path: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "services.console",
        "adduser",
        str(path),
        name,
        "viewer",
        "--password-stdin",
    ]
    return subprocess.run(
        command, input=f"{password}\n", capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


def test_cli_adds_a_user_from_stdin(tmp_path: Path) -> None:
    path = tmp_path / "users"
    done = adduser(path, "ops2", "s3cret-pass")
    assert done.returncode == 0, done.stderr
    assert verify(load_users(str(path)), "ops2", "s3cret-pass") is not None
    bad = adduser(path, "Bad Name", "x")
    assert bad.returncode == 2 and "user name" in bad.stderr
