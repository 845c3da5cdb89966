"""Run intake_voice: python -m services.intake_voice."""

import sys

# nats-py imports aiohttp only to offer ws:// connections; Frontdesk's NATS URLs are nats:// or tls://.
# Kept out of this process, it leaves about 9 MB resident unused (the 80 MB goal, bench/webhooks.py).
sys.modules.setdefault("aiohttp", None)  # type: ignore[arg-type]

from services.common.lifecycle import run  # noqa: E402
from services.intake_voice.app import main  # noqa: E402
from services.intake_voice.config import load_config  # noqa: E402

# uvloop: measured faster for the webhooks (bench/webhooks.py); asyncio's own loop elsewhere.
run("intake_voice", load_config, main, uvloop=True)
