"""`python -m services.router explain|check` on the example policy and on broken ones."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.contracts import subjects as s
from services.router import routing
from services.router.cli import run

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "deploy" / "policy.example.yaml")


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (
            ["--sender", "jane@acme.example", "--channel", "email", "--at", "2026-11-23T16:00:00Z"],
            {"client": "acme", "disposition": "dispatch", "response_due": "2026-11-23T14:00:00-06:00"},
        ),
        (
            ["--sender", "+13125550160", "--channel", "voice", "--at", "2026-11-21T00:00:00Z", "--emergency"],
            {"client": "globex", "disposition": "queue", "notify_at": "2026-11-23T08:00:00-06:00"},
        ),
        (
            ["--sender", "+13125550160", "--channel", "voice", "--at", "2026-11-20T18:00:00-06:00",
             "--emergency", "--billable"],
            {"disposition": "page_oncall", "billable": True, "response_due": "2026-11-20T20:00:00-06:00"},
        ),
        (
            ["--sender", "nobody@example.org", "--channel", "sms", "--at", "2026-07-03T15:00:00Z"],
            {"client": "unknown", "tier": "complimentary", "in_hours": False, "oncall": "bob"},
        ),
    ],
)  # fmt: skip
def test_explain(capsys: pytest.CaptureFixture[str], args: list[str], want: dict[str, object]) -> None:
    assert run(["explain", "--policy", POLICY, "--offline", *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {key: printed[key] for key in want} == want
    assert set(printed) >= {"tier", "priority", "assignee", "oncall", "reasons"}
    assert printed["reasons"]


def test_check_reports_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "--policy", POLICY]) == 0
    broken = tmp_path / "policy.yaml"
    broken.write_text(Path(POLICY).read_text().replace("\n    tier: complimentary\n", "\n    tier: gold\n"))
    assert run(["check", "--policy", str(broken)]) == 2
    assert "clients[1].tier: unknown tier 'gold'" in capsys.readouterr().err


def test_module_entry_point_exits_non_zero_on_a_bad_policy(tmp_path: Path) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("desk: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "services.router", "check", "--policy", str(broken)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "desk: Object missing required field" in done.stderr


GLOBEX_IN_HOURS = ["--sender", "hank@globex.example", "--at", "2026-11-23T16:00:00Z"]  # Mon 10:00 CST


def explained(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert run(["explain", *args]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_explain_defaults_to_frontdesk_policy_and_now(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_POLICY", POLICY)
    before = datetime.now(UTC)
    printed = explained(capsys, "--offline", "--sender", "jane@acme.example")
    assert printed["client"] == "acme"
    due = datetime.fromisoformat(str(printed["response_due"]))
    assert before <= due <= datetime.now(UTC) + timedelta(days=7)  # computed from now, not a fixed --at


def test_subject_and_body_keywords_count_like_the_router(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--offline", "--policy", POLICY, *GLOBEX_IN_HOURS]
    assert explained(capsys, *base, "--subject", "Printer question")["priority"] == "normal"
    assert explained(capsys, *base, "--subject", "Email is DOWN")["priority"] == "emergency"
    assert explained(capsys, *base, "--body", "the scanner is not working")["priority"] == "emergency"


def test_round_robin_says_next_in_rotation_when_the_cursor_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printed = explained(capsys, "--offline", "--policy", POLICY, *GLOBEX_IN_HOURS)
    assert printed["assignee"] == "next in rotation"
    reasons = printed["reasons"]
    assert isinstance(reasons, list) and "cannot be known here" in reasons[-1]
    assert not any("alice by round-robin" in str(r) for r in reasons)
    # A primary tech is known without any cursor.
    assert explained(capsys, "--offline", "--policy", POLICY, "--sender", "jane@acme.example",
                     "--at", "2026-11-23T16:00:00Z")["assignee"] == "alice"  # fmt: skip


async def test_round_robin_reads_the_live_cursor_from_nats(
    bus: Bus, bus_config: BusConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Globex rotates over its eligible techs (alice, carol: m365, bob excluded); the live cursor is 1.
    kv = await bus.kv(s.KV_ROUTER)
    await kv.put(routing.CURSOR_KEY, b"1")
    monkeypatch.setenv("FRONTDESK_NATS_URL", bus_config.url[0])
    if bus_config.user:  # a bus with users: explain reads the cursor as the test's user
        monkeypatch.setenv("FRONTDESK_NATS_USER", bus_config.user)
        monkeypatch.setenv("FRONTDESK_NATS_PASSWORD", bus_config.password.reveal())
    status = await asyncio.to_thread(run, ["explain", "--policy", POLICY, *GLOBEX_IN_HOURS])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["assignee"] == "carol"
    assert f"rotation cursor 1, live from NATS at {bus_config.url[0]}" in printed["reasons"][-1]


def test_unreachable_nats_answers_within_seconds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.setenv(
        "FRONTDESK_ENV", "development"
    )  # an anonymous bus is allowed: only reachability is tested
    printed = explained(capsys, "--policy", POLICY, *GLOBEX_IN_HOURS)
    assert printed["assignee"] == "next in rotation"
    assert "not reachable within 2 s" in str(printed["reasons"])


def test_no_bus_credentials_answer_next_in_rotation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_ENV", "production")
    monkeypatch.delenv("FRONTDESK_NATS_USER", raising=False)
    printed = explained(capsys, "--policy", POLICY, *GLOBEX_IN_HOURS)
    assert printed["assignee"] == "next in rotation"
    assert "FRONTDESK_NATS_USER" in str(printed["reasons"])


def test_cli_output_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["explain", "--offline", "--policy", POLICY, "--sender", "x@y.example", "--at", "\x1b[2J\x9b1m"])
        == 2
    )
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x9b" not in err and "\\x1b[2J\\x9b1m" in err
    broken = tmp_path / "policy.yaml"
    broken.write_text(Path(POLICY).read_text().replace("tier: complimentary\n", 'tier: "gold\\e[31m"\n', 1))
    assert run(["check", "--policy", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "gold\\x1b[31m" in err
