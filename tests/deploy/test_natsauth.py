"""deploy/nats/nats.conf is the render of services/common/natsauth.py, and the real nats-server accepts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services.common import natsauth
from services.common.natsserver import binary


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
