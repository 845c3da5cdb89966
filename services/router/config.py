"""Settings of the router (env prefix FRONTDESK_ROUTER_; the policy file is FRONTDESK_POLICY)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from services.common.config import BusConfig, load_service


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
    return load_service(RouterConfig, "FRONTDESK_ROUTER_", env, shared={"policy": "FRONTDESK_POLICY"})
