"""Notifier settings: prefix FRONTDESK_NOTIFIER_ plus the shared Twilio, thread-secret and policy names."""

from __future__ import annotations

import os

import msgspec

from services.common.config import BusConfig, ConfigError, Secret, load, load_bus, load_thread_secret
from services.policy.load import PolicyError, load_policy
from services.wording import catalog as wording
from services.wording.catalog import WordingError


class TwilioConfig(msgspec.Struct, frozen=True, kw_only=True):
    account_sid: str = ""
    auth_token: Secret = Secret("")
    from_: str = msgspec.field(default="", name="from")
    messaging_service_sid: str = ""
    api_base: str = ""  # empty = real Twilio; the sandbox URL in development and tests


class NotifierConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"  # health and metrics; 0.0.0.0 in a container so Prometheus can scrape
    http_port: int = 9103
    relay_host: str = "127.0.0.1"
    relay_port: int = 2526
    mail_from: str = "support@frontdesk.test"
    mail_domain: str = "frontdesk.test"
    send_attempts: int = 5  # 429/5xx retries inside one delivery before handing back to JetStream
    retry_base: float = 0.2  # seconds; doubled per attempt, capped at 5 s
    timer_poll: float = 1.0
    concurrency: int = 16  # messages handled at once per consumer (related ones stay in order)
    # Where Twilio reports final SMS status (intake_voice's /twilio/sms/status on its public URL);
    # empty = no callbacks, so carrier failures such as 30003 go unnoticed.
    status_callback: str = ""
    # A delivery record still "sending" after this many seconds belongs to a crashed or stuck sender
    # (the Twilio HTTP timeout is 10 s): it is reconciled against Twilio's message list.
    reconcile_after: float = 20.0
    twilio: TwilioConfig = TwilioConfig()
    thread_secret: Secret = Secret("")
    policy: str = "deploy/policy.example.yaml"
    templates: str = ""  # FRONTDESK_TEMPLATES: a folder whose files override the shipped wording
    bus: BusConfig = BusConfig()


def load_config() -> NotifierConfig:
    twilio = load(TwilioConfig, "FRONTDESK_TWILIO_")
    # FRONTDESK_TWILIO_FROM maps to the `from` field (a Python keyword).
    if "FRONTDESK_TWILIO_FROM" in os.environ:
        twilio = msgspec.structs.replace(twilio, from_=os.environ["FRONTDESK_TWILIO_FROM"])
    policy = os.environ.get("FRONTDESK_POLICY", "deploy/policy.example.yaml")
    try:
        # Fail at start with the variable's name, not later inside the event loop.
        load_policy(policy)
    except PolicyError as exc:
        raise ConfigError(f"FRONTDESK_POLICY: {exc}") from None
    templates = os.environ.get("FRONTDESK_TEMPLATES", "")
    try:
        wording.load(templates or None)
    except WordingError as exc:
        raise ConfigError(f"FRONTDESK_TEMPLATES: {exc}") from None
    return load(
        NotifierConfig,
        "FRONTDESK_NOTIFIER_",
        twilio=twilio,
        thread_secret=load_thread_secret(),
        policy=policy,
        templates=templates,
        bus=load_bus(),
    )
