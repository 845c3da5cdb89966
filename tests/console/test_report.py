"""The service report's arithmetic: percentiles, attainment, breach reasons, outliers, heat map, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.console import report
from services.console.store import ReportRow

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC).timestamp()  # Mon 09:00 Chicago
MIN = 60.0
CHICAGO = ZoneInfo("America/Chicago")


def row(number: str, **fields: object) -> ReportRow:
    values: dict[str, object] = {
        "number": number,
        "client_id": "acme",
        "client_name": "Acme Manufacturing",
        "channel": "email",
        "tier": "premium",
        "priority": "normal",
        "status": "resolved",
        "assignee": "alice",
        "opened_at": T0,
        "due_at": T0 + 60 * MIN,
        "accepted_at": T0 + 10 * MIN,
        "resolved_at": T0 + 30 * MIN,
        "escalation_step": 0,
        "notified_at": T0 + 1 * MIN,
        "breach_text": None,
    }
    values.update(fields)
    return ReportRow(**values)  # type: ignore[arg-type]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (report.percentile(values, 0.5), report.percentile(values, 0.9)) == (5.0, 9.0)
    assert report.percentile([], 0.5) is None
    assert report.percentile([7.0], 0.9) == 7.0


def test_times_per_tier_and_tech() -> None:
    rows = [
        row("SR-1"),
        row("SR-2", assignee="bob", accepted_at=T0 + 20 * MIN, resolved_at=None, status="accepted"),
        row("SR-3", tier="complimentary", accepted_at=None, resolved_at=None, status="dispatched"),
    ]
    per_tier = {t.group: t for t in report.timings(rows, lambda r: r.tier)}
    assert per_tier["premium"].requests == 2
    assert (per_tier["premium"].accept.p50, per_tier["premium"].accept.p90) == (10 * MIN, 20 * MIN)
    assert per_tier["premium"].resolve.count == 1
    assert per_tier["complimentary"].accept.count == 0 and per_tier["complimentary"].accept.p50 is None
    per_tech = {t.group: t.requests for t in report.timings(rows, lambda r: r.assignee)}
    assert per_tech == {"alice": 2, "bob": 1}


def test_attainment_counts_met_missed_and_pending() -> None:
    now = T0 + 120 * MIN
    rows = [
        row("SR-1"),  # accepted at +10, due +60: met
        row("SR-2", accepted_at=T0 + 75 * MIN),  # late: missed
        row("SR-3", accepted_at=None, resolved_at=None, status="dispatched"),  # due passed: missed
        row("SR-4", accepted_at=None, resolved_at=None, status="dispatched", due_at=now + 60),  # pending
        row("SR-5", accepted_at=None, resolved_at=T0 + 40 * MIN),  # resolved at the desk in time: met
    ]
    [premium] = report.attainment(rows, lambda r: r.tier, now)
    assert (premium.met, premium.missed, premium.pending) == (2, 2, 1)
    assert premium.rate == 0.5


def test_breaches_say_why() -> None:
    now = T0 + 120 * MIN
    rows = [
        row("SR-1"),
        row("SR-2", accepted_at=T0 + 75 * MIN, assignee="carol", escalation_step=1),
        row(
            "SR-3",
            accepted_at=None,
            resolved_at=None,
            status="dispatched",
            assignee="ops",
            escalation_step=3,
            breach_text="Response target missed",
        ),
    ]
    found = {b.number: b.reason for b in report.breaches(rows, now)}
    assert found == {
        "SR-2": "accepted 15 min after the target by carol; escalated 1 time",
        "SR-3": "nobody accepted; ops holds it; escalated 3 times; Response target missed",
    }


def test_outliers_are_far_from_their_tiers_median() -> None:
    rows = [row(f"SR-{i}", resolved_at=T0 + 30 * MIN) for i in range(4)]
    rows.append(row("SR-slow", resolved_at=T0 + 200 * MIN))
    rows.append(row("SR-fast", resolved_at=T0 + 5 * MIN))
    rows.append(row("SR-other", tier="complimentary", resolved_at=T0 + 500 * MIN))  # too few to judge
    found = [(o.number, o.direction) for o in report.outliers(rows)]
    assert found == [("SR-slow", "slower"), ("SR-fast", "faster")]


def test_heat_map_counts_arrivals_in_desk_time() -> None:
    arrivals = [T0, T0 + 10 * MIN, T0 + 12 * 3600]  # Mon 09:00, Mon 09:10, Mon 21:00 Chicago
    grid = report.heat(arrivals, CHICAGO)
    assert grid[0][9] == 2 and grid[0][21] == 1 and sum(map(sum, grid)) == 3


def test_csv_has_a_section_per_figure() -> None:
    start = datetime(2026, 11, 23, tzinfo=CHICAGO)
    built = report.build(
        [row("SR-1")], [T0], start=start, end=start + timedelta(days=1), now=start, zone=CHICAGO
    )
    lines = report.to_csv(built).splitlines()
    assert lines[0].startswith("section,group,count")
    assert "times_by_tier,premium,1,1.0,1.0,10.0,10.0,30.0,30.0," in lines
    assert any(line.startswith("sla_by_client,Acme Manufacturing,1") for line in lines)
    assert "arrivals_by_hour,Mon 09:00,1,,,,,,," in lines
