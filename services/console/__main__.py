"""Run the console (python -m services.console), or `rebuild`, `adduser` and `hash-password`."""

import sys

from services.common.lifecycle import run
from services.console.app import main
from services.console.cli import run as run_cli
from services.console.config import load_config

if len(sys.argv) > 1:
    raise SystemExit(run_cli(sys.argv[1:]))
run("console", load_config, main)
