"""Settings of the SMTP intake (env prefix FRONTDESK_SMTP_; the thread secret is FRONTDESK_THREAD_SECRET)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Literal

import msgspec

from services.common.config import (
    BusConfig,
    ConfigError,
    Environment,
    Secret,
    load_service,
    load_thread_secret,
)
from services.intake_email.mail.message import DEFAULT_EMERGENCY

MAX_INLINE_RAW = 256 * 1024


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
    max_sessions_per_ip: int = 20  # so one address cannot hold every slot (slowloris)
    idle_timeout: float = 60.0  # seconds a session may wait between commands or data lines
    rate_per_minute: int = 120  # messages per client IP
    tls_cert: str = ""
    tls_key: str = ""
    publish_timeout: float = 5.0  # store + publish must finish within this, else 451
    # Marked in the request's hints by policy.matching's one matcher; the router also applies the policy's.
    emergency_keywords: tuple[str, ...] = DEFAULT_EMERGENCY
    thread_secret: Secret = Secret("")
    # Who vouches for the From address: we check DMARC ourselves over DNS ("dmarc"), the organisation's
    # own relay does and says so in Authentication-Results with `authserv_id` ("upstream"), or nobody
    # ("off": development only).
    sender_auth: Literal["dmarc", "upstream", "off"] = "dmarc"
    authserv_id: str = ""
    # Upstream mode: the peers (IPs or CIDR networks) whose Authentication-Results count. Empty: any
    # peer, so the SMTP port must then be reachable from the relay only.
    upstream_relays: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()  # "ip" or "ip:port"; empty = the system resolver
    dns_timeout: float = 5.0
    # Above this many characters the body and text travel as excerpts; the whole text is an object.
    max_inline_text: int = 64 * 1024
    # Up to this many bytes the raw mail travels inside its request (base64: a third bigger) instead of
    # as an object; at most MAX_INLINE_RAW, so the request stays far under NATS's 1 MiB message limit.
    max_inline_raw: int = 64 * 1024
    # Processes serving the SMTP port (SO_REUSEPORT), each with its own bus connection; unset or 0 means
    # one per core the process may run on (load_service). On a quiet 2-core host two gave 1.07x bare
    # aiosmtpd against 1.0x for one, at a third more CPU per message (bench/smtp.py measures both): where
    # the intake shares its cores with the rest of the desk, FRONTDESK_SMTP_WORKERS=1 leaves them more.
    workers: int = 1
    # Which of them this process is: 0 for the primary (it serves HTTP and starts the others).
    worker: int = 0
    environment: Environment = "production"
    bus: BusConfig = BusConfig()


def check(cfg: SmtpConfig) -> None:
    """Refuse settings that would leave senders unchecked by accident, naming the setting."""
    if cfg.sender_auth == "upstream" and not cfg.authserv_id.strip():
        raise ConfigError("FRONTDESK_SMTP_AUTHSERV_ID: required when FRONTDESK_SMTP_SENDER_AUTH=upstream")
    if cfg.sender_auth == "off" and cfg.environment != "development":
        raise ConfigError("FRONTDESK_SMTP_SENDER_AUTH=off is refused outside FRONTDESK_ENV=development")
    for relay in cfg.upstream_relays:
        try:
            ipaddress.ip_network(relay, strict=False)
        except ValueError:
            raise ConfigError(f"FRONTDESK_SMTP_UPSTREAM_RELAYS: {relay!r} is not an IP or network") from None
    if not 0 <= cfg.max_inline_raw <= MAX_INLINE_RAW:
        raise ConfigError(f"FRONTDESK_SMTP_MAX_INLINE_RAW must be between 0 and {MAX_INLINE_RAW}")
    if cfg.workers < 1:
        raise ConfigError("FRONTDESK_SMTP_WORKERS must be at least 1")
    if cfg.max_sessions_per_ip < 1 or cfg.idle_timeout <= 0:
        raise ConfigError("FRONTDESK_SMTP_MAX_SESSIONS_PER_IP and _IDLE_TIMEOUT must be positive")


def load_config(env: Mapping[str, str] | None = None) -> SmtpConfig:
    cfg = load_service(SmtpConfig, "FRONTDESK_SMTP_", env, thread_secret=load_thread_secret(env))
    check(cfg)
    return cfg
