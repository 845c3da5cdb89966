"""deploy/nats/nats.conf is the render of services/common/natsauth.py, and the real nats-server accepts it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.common import natsauth
from services.common.bus import Bus
from services.common.natsserver import binary
from services.contracts import subjects as s
from tests.conftest import AuthServer


def test_checked_in_config_equals_the_render() -> None:
    assert natsauth.CHECKED_IN.read_text() == natsauth.render(), (
        "deploy/nats/nats.conf is stale: run python -m services.common.natsauth render --output "
        "deploy/nats/nats.conf"
    )


def test_nats_server_accepts_it_with_a_generated_passwords_file(tmp_path: Path) -> None:
    shutil.copy(natsauth.CHECKED_IN, tmp_path / natsauth.CONFIG_NAME)
    assert natsauth.main(["secrets", str(tmp_path)]) == 0
    config = str(tmp_path / natsauth.CONFIG_NAME)
    checked = subprocess.run([binary(), "-c", config, "-t"], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # Without the passwords file the server refuses to start rather than run open.
    (tmp_path / natsauth.PASSWORDS_NAME).unlink()
    refused = subprocess.run([binary(), "-c", config, "-t"], check=False, capture_output=True, text=True)
    assert refused.returncode != 0
    assert natsauth.PASSWORDS_NAME in refused.stderr


def test_ops_creates_the_topology_from_the_command_line(nats_server: AuthServer) -> None:
    """What compose runs once before the services (as ops), with limits from FRONTDESK_RETENTION_*."""
    env = {
        **os.environ,
        **nats_server.service_env(natsauth.OPS),
        "FRONTDESK_ENV": "development",
        "FRONTDESK_RETENTION_WINDOWS_MB": "3",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.common.topology"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

    async def windows_limit() -> int | None:
        bus = await Bus.connect(nats_server.config_for(), "check")
        try:
            return (await bus.js.stream_info(f"KV_{s.KV_WINDOWS}")).config.max_bytes
        finally:
            await bus.close()

    assert asyncio.run(windows_limit()) == 3 * 1024 * 1024
