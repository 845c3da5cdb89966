"""Sandbox settings (env prefix FRONTDESK_SANDBOX_)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from services.common.config import Secret, load


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8025
    smtp_port: int = 2526
    webhook_base: str = "http://127.0.0.1:8080"  # where intake_voice listens
    public_base: str = ""  # URL signed in X-Twilio-Signature; empty = webhook_base
    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: Secret = Secret("sandbox-auth-token")
    phone_number: str = "+13125550100"  # the support number callers dial
    max_call_steps: int = 20
    policy: str = "deploy/policy.example.yaml"  # FRONTDESK_POLICY: names beside numbers on the page

    @property
    def signed_base(self) -> str:
        return (self.public_base or self.webhook_base).rstrip("/")


def load_config(env: Mapping[str, str] | None = None) -> SandboxConfig:
    """FRONTDESK_SANDBOX_*; the shared FRONTDESK_TWILIO_ACCOUNT_SID/_AUTH_TOKEN fill in when unset,
    so the services and the sandbox agree on credentials without setting them twice."""
    source = dict(os.environ if env is None else env)
    for field in ("ACCOUNT_SID", "AUTH_TOKEN"):
        shared = source.get(f"FRONTDESK_TWILIO_{field}")
        if shared:
            source.setdefault(f"FRONTDESK_SANDBOX_{field}", shared)
    if "FRONTDESK_POLICY" in source:
        source.setdefault("FRONTDESK_SANDBOX_POLICY", source["FRONTDESK_POLICY"])
    return load(SandboxConfig, "FRONTDESK_SANDBOX_", source)
