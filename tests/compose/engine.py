"""The Docker engine for the compose suites: ../shared/tools/docker-local.sh, started here if not running."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT.parent / "shared" / "tools" / "docker-local.sh"
# The first start installs Debian's docker.io and builds two base images: minutes, not hours.
START_TIMEOUT = 30 * 60.0


class EngineUnavailable(RuntimeError):
    """No engine and none could be started; the message says why."""


@dataclass
class DockerEngine:
    """A dockerd reached through docker-local.sh's socket; stopped at the end only if we started it."""

    env: dict[str, str] = field(default_factory=dict)
    started_here: bool = False

    def start(self) -> None:
        if not SCRIPT.is_file():
            raise EngineUnavailable(f"{SCRIPT} not found: the compose suites need ../shared/tools")
        self.env = {**os.environ, **self._script_env()}
        if self.answers():
            return
        self.started_here = True
        try:
            result = subprocess.run(
                ["bash", str(SCRIPT), "start"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailable(
                f"docker-local.sh start still running after {START_TIMEOUT:.0f}s"
            ) from exc
        if result.returncode != 0 or not self.answers():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise EngineUnavailable(f"docker-local.sh start failed (exit {result.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.started_here:
            subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, timeout=120, check=False)
            self.started_here = False

    def answers(self) -> bool:
        try:
            probe = subprocess.run(
                ["docker", "info"], env=self.env, capture_output=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0

    @staticmethod
    def _script_env() -> dict[str, str]:
        """DOCKER_HOST and DOCKER_CONFIG as `docker-local.sh env` prints them (export A=x B=y)."""
        out = subprocess.run(
            ["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
        pairs = out.strip().removeprefix("export").split()
        return dict(pair.split("=", 1) for pair in pairs)
