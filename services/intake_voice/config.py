"""intake_voice settings (FRONTDESK_VOICE_*), the Twilio auth token and the bus; refuses to start unsigned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from services.common.config import (
    MAX_WORKERS,
    BusConfig,
    ConfigError,
    Environment,
    Secret,
    load_service,
    require_strong,
)
from services.wording import catalog as wording
from services.wording.catalog import WordingError

# Settings the other services read too: the policy file, the wording folder, the Twilio auth token.
_SHARED = {
    "policy": "FRONTDESK_POLICY",
    "templates": "FRONTDESK_TEMPLATES",
    "auth_token": "FRONTDESK_TWILIO_AUTH_TOKEN",
}


class VoiceConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080  # the public webhook port: Twilio's routes and /healthz, /readyz only
    http_port: int = 9104  # internal: /metrics and /readyz with details, never exposed to the internet
    public_url: str = "http://127.0.0.1:8080"  # the base URL Twilio calls: signatures cover it
    trust_forwarded: bool = False  # honour X-Forwarded-Host/Proto (only behind our own proxy)
    spool_dir: str = ".data/voice-spool"
    # Twilio abandons a webhook after 15 s; a caller must hear TwiML long before that.
    publish_timeout: float = 2.0
    respool_interval: float = 1.0
    policy: str = "deploy/policy.example.yaml"
    templates: str = ""  # FRONTDESK_TEMPLATES: a folder whose files override the shipped wording
    auth_token: Secret = Secret("")
    region: str = "US"  # default region for caller ids without a country code
    environment: Environment = "production"  # development also serves /docs, /redoc, /openapi.json
    bus: BusConfig = BusConfig()
    # Processes sharing the public port (SO_REUSEPORT), nothing else but NATS and the spool folder;
    # FRONTDESK_VOICE_WORKERS unset or 0 means one per core. Worker i > 0 serves its internal port
    # on http_port + i (0 stays 0: any free port).
    workers: Annotated[int, msgspec.Meta(ge=1, le=MAX_WORKERS)] = 1
    worker: Annotated[int, msgspec.Meta(ge=0, lt=MAX_WORKERS)] = 0  # this process's index; set by worker 0


def load_config(env: Mapping[str, str] | None = None) -> VoiceConfig:
    cfg = load_service(VoiceConfig, "FRONTDESK_VOICE_", env, shared=_SHARED)
    if cfg.templates:
        try:
            wording.load(cfg.templates)  # every line a caller hears renders, or the start is refused
        except WordingError as exc:
            raise ConfigError(f"FRONTDESK_TEMPLATES: {exc}") from None
    if any(url.strip().lower().startswith(("ws://", "wss://")) for url in cfg.bus.url):
        # The process runs without aiohttp, nats-py's WebSocket transport (__main__.py: memory).
        raise ConfigError("FRONTDESK_NATS_URL: intake_voice connects with nats:// or tls://, not WebSocket")
    if not cfg.auth_token:
        # Without the token no signature can be checked: never fail open.
        raise ConfigError("FRONTDESK_TWILIO_AUTH_TOKEN: required (webhook signatures cannot be checked)")
    # A real Twilio auth token is 32 hex digits; a short or placeholder one lets anyone sign webhooks.
    require_strong("FRONTDESK_TWILIO_AUTH_TOKEN", cfg.auth_token, cfg.environment)
    return cfg
