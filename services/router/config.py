"""Settings of the router (env prefix FRONTDESK_ROUTER_; the policy file is FRONTDESK_POLICY)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from services.common.config import BusConfig, load, load_bus


class RouterConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    http_port: int = 9102
    policy: str = "deploy/policy.example.yaml"
    durable: str = "router"
    # Requests handled at once; related ones (same thread, request or ticket) still go in order.
    concurrency: int = 16
    timer_poll: float = 1.0  # seconds between scans of the release timers (a ManualClock wakes it early)
    bus: BusConfig = BusConfig()


def load_config(env: Mapping[str, str] | None = None) -> RouterConfig:
    source = os.environ if env is None else env
    overrides = {"bus": load_bus(source)}
    if source.get("FRONTDESK_POLICY"):
        overrides["policy"] = source["FRONTDESK_POLICY"]  # type: ignore[assignment]
    return load(RouterConfig, "FRONTDESK_ROUTER_", source, **overrides)
