"""Run the SMTP intake: python -m services.intake_email."""

from services.common.lifecycle import run
from services.intake_email.app import main
from services.intake_email.config import load_config

run("intake_email", load_config, main)
