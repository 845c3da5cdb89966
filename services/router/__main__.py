"""Run the router (python -m services.router), or its `explain` / `check` commands."""

import sys

from services.common.lifecycle import run
from services.router.app import main
from services.router.cli import run as run_cli
from services.router.config import load_config

if len(sys.argv) > 1:
    raise SystemExit(run_cli(sys.argv[1:]))
run("router", load_config, main)
