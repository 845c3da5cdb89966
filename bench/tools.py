"""The C load generators: Postfix's smtp-source (unpacked from Debian's package, never installed) and wrk.

A load generator written in Python saturates before the services it measures do, and then the
benchmark reports the load loop. Both tools are fetched on first use from Debian's archive, the only
package source this project may count on besides PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.common.process import ROOT

TOOLS = ROOT / ".data" / "tools"


class ToolMissing(RuntimeError):
    """A load generator could not be installed; the message says why and what to run."""


@dataclass(frozen=True)
class Tool:
    """An executable and the environment it needs (smtp-source loads Postfix's own shared libraries)."""

    path: Path
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [str(self.path), *args]


def _run(argv: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolMissing(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")


def smtp_source() -> Tool:
    """Postfix's smtp-source, from `apt-get download postfix` + `dpkg-deb -x` into .data/tools."""
    root = TOOLS / "postfix"
    binary = root / "usr" / "sbin" / "smtp-source"
    if not binary.exists():
        download = TOOLS / "download"
        download.mkdir(parents=True, exist_ok=True)
        for stale in download.glob("postfix_*.deb"):
            stale.unlink()
        _run(["apt-get", "download", "postfix"], cwd=download)
        debs = sorted(download.glob("postfix_*.deb"))
        if not debs:
            raise ToolMissing("apt-get download postfix produced no .deb (run apt-get update once)")
        _run(["dpkg-deb", "-x", str(debs[-1]), str(root)])
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(root / "usr" / "lib" / "postfix")
    return Tool(binary, env)


def wrk() -> Tool:
    """wrk from Debian's package, installed with apt-get when it is not on PATH."""
    found = shutil.which("wrk")
    if found is None:
        # Another apt-get may hold the lock (CI installs other tools too): wait for it rather than fail.
        _run(
            [
                "apt-get",
                "install",
                "-y",
                "-qq",
                "-o",
                "DPkg::Lock::Timeout=600",
                "--no-install-recommends",
                "wrk",
            ]
        )
        found = shutil.which("wrk")
        if found is None:
            raise ToolMissing("apt-get install wrk left no wrk on PATH")
    return Tool(Path(found), dict(os.environ))
