"""intake_voice settings (FRONTDESK_VOICE_*), the Twilio auth token and the bus; refuses to start unsigned."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from services.common.config import (
    BusConfig,
    ConfigError,
    Environment,
    Secret,
    load,
    load_bus,
    load_environment,
    require_strong,
)


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
    auth_token: Secret = Secret("")
    region: str = "US"  # default region for caller ids without a country code
    environment: Environment = "production"  # development also serves /docs, /redoc, /openapi.json
    bus: BusConfig = BusConfig()


def load_config(env: Mapping[str, str] | None = None) -> VoiceConfig:
    source = os.environ if env is None else env
    environment = load_environment(source)
    cfg = load(
        VoiceConfig,
        "FRONTDESK_VOICE_",
        source,
        policy=source.get("FRONTDESK_POLICY", "deploy/policy.example.yaml"),
        auth_token=Secret(source.get("FRONTDESK_TWILIO_AUTH_TOKEN", "")),
        environment=environment,
        bus=load_bus(source),
    )
    if not cfg.auth_token:
        # Without the token no signature can be checked: never fail open.
        raise ConfigError("FRONTDESK_TWILIO_AUTH_TOKEN: required (webhook signatures cannot be checked)")
    # A real Twilio auth token is 32 hex digits; a short or placeholder one lets anyone sign webhooks.
    require_strong("FRONTDESK_TWILIO_AUTH_TOKEN", cfg.auth_token, environment)
    return cfg
