"""Settings of the SMTP intake (env prefix FRONTDESK_SMTP_; the thread secret is FRONTDESK_THREAD_SECRET)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from services.common.config import BusConfig, Secret, load, load_bus, load_thread_secret


class SmtpConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 2525
    http_port: int = 9101
    hostname: str = "frontdesk.test"
    support_addresses: tuple[str, ...] = ("support@frontdesk.test",)
    support_domains: tuple[str, ...] = ()
    max_size: int = 25 * 1024 * 1024
    max_recipients: int = 20
    max_sessions: int = 100
    rate_per_minute: int = 120  # messages per client IP
    tls_cert: str = ""
    tls_key: str = ""
    publish_timeout: float = 5.0  # store + publish must finish within this, else 451
    emergency_keywords: tuple[str, ...] = ("down", "outage", "urgent", "emergency", "offline", "not working")
    thread_secret: Secret = Secret("")
    bus: BusConfig = BusConfig()


def load_config(env: Mapping[str, str] | None = None) -> SmtpConfig:
    source = os.environ if env is None else env
    return load(
        SmtpConfig,
        "FRONTDESK_SMTP_",
        source,
        bus=load_bus(source),
        thread_secret=load_thread_secret(source),
    )
