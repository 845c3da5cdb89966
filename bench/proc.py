"""CPU time and peak memory of a process and its children, read from /proc (Linux)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from services.common.process import peak_rss_mb


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process and its children have used so far (clock ticks in /proc).

    A child that has exited and been reaped is no longer in the tree: its time is in its parent's
    cutime/cstime, counted too, so a worker ending between two samples never makes the difference
    negative."""
    total = 0.0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def tree(pid: int) -> list[int]:
    """`pid` and every descendant (worker processes of a service)."""
    found = [pid]
    for parent in found:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found.extend(int(child) for child in children)
    return found


def tree_peak_rss_mb(pid: int) -> float:
    """The largest peak RSS of any one process of the tree: the per-process memory goal."""
    peaks = [peak_rss_mb(member) for member in tree(pid)]
    return max((p for p in peaks if not math.isnan(p)), default=float("nan"))
