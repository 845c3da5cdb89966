"""Run intake_voice: python -m services.intake_voice."""

from services.common.lifecycle import run
from services.intake_voice.app import main
from services.intake_voice.config import load_config

# uvloop: measured faster for the webhooks (bench/webhooks.py); asyncio's own loop elsewhere.
run("intake_voice", load_config, main, uvloop=True)
