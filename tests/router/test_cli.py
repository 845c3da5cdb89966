"""`python -m services.router explain|check` on the example policy and on broken ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert run(["explain", "--policy", POLICY, *args]) == 0
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
