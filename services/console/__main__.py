"""Run the console (python -m services.console), or `rebuild`, `adduser` and `hash-password`."""

import sys

if len(sys.argv) > 1:
    # The commands need neither the web app nor the bus: a command starts in a fraction of the time.
    from services.console.cli import run as run_cli

    raise SystemExit(run_cli(sys.argv[1:]))

from services.common.lifecycle import run
from services.console.app import main
from services.console.config import load_config

run("console", load_config, main)
