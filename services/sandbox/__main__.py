"""Run the Twilio and mail-relay sandbox: python -m services.sandbox."""

from services.common.lifecycle import run
from services.sandbox.app import main
from services.sandbox.config import load_config

run("sandbox", load_config, main)
