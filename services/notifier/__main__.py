"""Run the notifier: python -m services.notifier."""

from services.common.lifecycle import run
from services.notifier.app import main
from services.notifier.config import load_config

run("notifier", load_config, main)
