"""The service report from read-model rows: volumes, p50/p90 times, SLA attainment, breaches, outliers."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from services.console.clocks import span
from services.console.store import ReportRow

OUTLIER_RATIO = 3.0  # this many times slower (or faster) than its tier's median is an outlier
OUTLIER_MIN_SAMPLES = 4  # a median of fewer tickets says too little
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Spread(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    p50: float | None  # seconds
    p90: float | None


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    requests: int
    notify: Spread
    accept: Spread
    resolve: Spread


class Attainment(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    met: int
    missed: int
    pending: int

    @property
    def rate(self) -> float | None:
        decided = self.met + self.missed
        return self.met / decided if decided else None


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    client: str
    tier: str
    assignee: str | None
    due_at: float
    reason: str


class Outlier(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    tier: str
    assignee: str | None
    seconds: float  # time to resolve
    median: float  # the tier's median time to resolve
    direction: str  # "slower" or "faster"


class Report(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    requests: int
    by_channel: dict[str, int]
    by_tier: dict[str, int]
    by_client: dict[str, int]
    per_tier: list[Timing]
    per_tech: list[Timing]
    sla_tier: list[Attainment]
    sla_client: list[Attainment]
    breaches: list[Breach]
    outliers: list[Outlier]
    heat: list[list[int]]  # [weekday][hour] arrivals, desk time zone
    arrivals: int


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def spread(values: list[float]) -> Spread:
    return Spread(count=len(values), p50=percentile(values, 0.5), p90=percentile(values, 0.9))


def responded_at(row: ReportRow) -> float | None:
    """A tech's acceptance, or a resolution without one (the desk closed it): the response."""
    return row.accepted_at if row.accepted_at is not None else row.resolved_at


def timings(rows: list[ReportRow], key: Callable[[ReportRow], str | None]) -> list[Timing]:
    groups: dict[str, list[ReportRow]] = defaultdict(list)
    for row in rows:
        groups[key(row) or "(none)"].append(row)
    result = []
    for group, members in sorted(groups.items()):
        notify = [r.notified_at - r.opened_at for r in members if r.notified_at is not None]
        accept = [r.accepted_at - r.opened_at for r in members if r.accepted_at is not None]
        resolve = [r.resolved_at - r.opened_at for r in members if r.resolved_at is not None]
        result.append(
            Timing(
                group=group,
                requests=len(members),
                notify=spread(notify),
                accept=spread(accept),
                resolve=spread(resolve),
            )
        )
    return result


def attainment(rows: list[ReportRow], key: Callable[[ReportRow], str], now: float) -> list[Attainment]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        answered = responded_at(row)
        slot = counts[key(row)]
        if answered is not None and answered <= row.due_at:
            slot[0] += 1
        elif answered is not None or now > row.due_at:
            slot[1] += 1
        else:
            slot[2] += 1
    return [Attainment(group=g, met=m, missed=x, pending=p) for g, (m, x, p) in sorted(counts.items())]


def breach_reason(row: ReportRow) -> str:
    answered = responded_at(row)
    parts = []
    if answered is not None:
        who = f" by {row.assignee}" if row.assignee else ""
        verb = "accepted" if row.accepted_at is not None else "resolved"
        parts.append(f"{verb} {span(answered - row.due_at)} after the target{who}")
    elif row.status == "queued":
        parts.append("still queued when the target passed")
    else:
        parts.append(f"nobody accepted; {row.assignee or 'nobody'} holds it")
    if row.escalation_step:
        parts.append(f"escalated {row.escalation_step} time{'s' if row.escalation_step != 1 else ''}")
    if row.breach_text:
        parts.append(row.breach_text)
    return "; ".join(parts)


def breaches(rows: list[ReportRow], now: float) -> list[Breach]:
    found = []
    for row in rows:
        answered = responded_at(row)
        late = answered > row.due_at if answered is not None else now > row.due_at
        if late:
            found.append(
                Breach(
                    number=row.number,
                    client=row.client_name,
                    tier=row.tier,
                    assignee=row.assignee,
                    due_at=row.due_at,
                    reason=breach_reason(row),
                )
            )
    return found


def outliers(rows: list[ReportRow]) -> list[Outlier]:
    """Resolved work far slower or faster than the median of its tier."""
    by_tier: dict[str, list[ReportRow]] = defaultdict(list)
    for row in rows:
        if row.resolved_at is not None:
            by_tier[row.tier].append(row)
    found = []
    for tier, members in sorted(by_tier.items()):
        if len(members) < OUTLIER_MIN_SAMPLES:
            continue
        median = percentile([r.resolved_at - r.opened_at for r in members if r.resolved_at], 0.5) or 0.0
        if median <= 0:
            continue
        for row in members:
            took = (row.resolved_at or row.opened_at) - row.opened_at
            if took >= median * OUTLIER_RATIO or took * OUTLIER_RATIO <= median:
                direction = "slower" if took > median else "faster"
                found.append(
                    Outlier(
                        number=row.number,
                        tier=tier,
                        assignee=row.assignee,
                        seconds=took,
                        median=median,
                        direction=direction,
                    )
                )
    return sorted(found, key=lambda o: -abs(math.log((o.seconds + 1) / (o.median + 1))))


def heat(arrivals: Iterable[float], zone: ZoneInfo) -> list[list[int]]:
    grid = [[0] * 24 for _ in range(7)]
    for at in arrivals:
        local = datetime.fromtimestamp(at, zone)
        grid[local.weekday()][local.hour] += 1
    return grid


def build(
    rows: list[ReportRow],
    arrivals: list[float],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    zone: ZoneInfo,
) -> Report:
    moment = now.timestamp()
    return Report(
        start=start,
        end=end,
        requests=len(rows),
        by_channel=dict(Counter(r.channel for r in rows).most_common()),
        by_tier=dict(Counter(r.tier for r in rows).most_common()),
        by_client=dict(Counter(r.client_name for r in rows).most_common()),
        per_tier=timings(rows, lambda r: r.tier),
        per_tech=timings(rows, lambda r: r.assignee),
        sla_tier=attainment(rows, lambda r: r.tier, moment),
        sla_client=attainment(rows, lambda r: r.client_name, moment),
        breaches=breaches(rows, moment),
        outliers=outliers(rows),
        heat=heat(arrivals, zone),
        arrivals=len(arrivals),
    )


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def to_csv(report: Report) -> str:
    """One table with a `section` column, so a spreadsheet can filter it; times in minutes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "section",
            "group",
            "count",
            "notify_p50_min",
            "notify_p90_min",
            "accept_p50_min",
            "accept_p90_min",
            "resolve_p50_min",
            "resolve_p90_min",
            "detail",
        ]
    )
    for section, values in (
        ("channel", report.by_channel),
        ("tier", report.by_tier),
        ("client", report.by_client),
    ):
        for group, count in values.items():
            writer.writerow([f"requests_by_{section}", group, count, "", "", "", "", "", "", ""])
    for section, timings_ in (("times_by_tier", report.per_tier), ("times_by_tech", report.per_tech)):
        for t in timings_:
            writer.writerow(
                [
                    section,
                    t.group,
                    t.requests,
                    minutes(t.notify.p50),
                    minutes(t.notify.p90),
                    minutes(t.accept.p50),
                    minutes(t.accept.p90),
                    minutes(t.resolve.p50),
                    minutes(t.resolve.p90),
                    "",
                ]
            )
    for section, rows in (("sla_by_tier", report.sla_tier), ("sla_by_client", report.sla_client)):
        for a in rows:
            rate = "" if a.rate is None else f"{a.rate:.3f}"
            writer.writerow(
                [
                    section,
                    a.group,
                    a.met + a.missed + a.pending,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    f"met={a.met} missed={a.missed} pending={a.pending} rate={rate}",
                ]
            )
    for b in report.breaches:
        writer.writerow(["breach", b.number, 1, "", "", "", "", "", "", f"{b.client}: {b.reason}"])
    for o in report.outliers:
        writer.writerow(
            [
                "outlier",
                o.number,
                1,
                "",
                "",
                "",
                "",
                minutes(o.median),
                minutes(o.seconds),
                f"{o.direction} than the {o.tier} median",
            ]
        )
    for day, hours in zip(DAYS, report.heat, strict=True):
        for hour, count in enumerate(hours):
            if count:
                writer.writerow(
                    ["arrivals_by_hour", f"{day} {hour:02d}:00", count, "", "", "", "", "", "", ""]
                )
    return out.getvalue()
