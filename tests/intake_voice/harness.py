"""A real intake_voice app over ASGI against a real nats-server, and helpers to read what it published."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.process import ROOT
from services.contracts import subjects as s
from services.contracts.requests import ServiceRequest
from services.intake_voice.app import Voice
from services.intake_voice.spool import Spool
from tests.support import stream_messages

TOKEN = "test-auth-token"
STRONG_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # 32 hex digits: starts in production
PUBLIC = "https://voice.example.com"
SATURDAY = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 3 PM Chicago: after hours
TUESDAY = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 10 AM Chicago: business hours
ALICE = "+13125550123"  # Acme Dental, business-hours tier with a $250 billable offer
GARY = "+13125550199"  # Globex, premium: emergencies page on-call
OMAR = "+13125550112"  # on call that Saturday
TARA = "+13125550111"


@dataclass
class Harness:
    http: httpx.AsyncClient  # the public webhook port
    internal: httpx.AsyncClient  # the internal port: /metrics, /readyz with details
    voice: Voice
    bus: Bus
    clock: ManualClock
    spool: Spool

    async def post(
        self, path: str, params: dict[str, str], *, signature: str | None = None
    ) -> httpx.Response:
        sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
        headers = {"X-Twilio-Signature": sig if signature is None else signature}
        return await self.http.post(path, data=params, headers=headers)


async def stored(bus: Bus, stream: str) -> list[tuple[str, dict[str, str], Any]]:
    """(subject, headers, decoded JSON) of every message in a stream, in order."""
    return [
        (msg.subject or "", dict(msg.headers or {}), json.loads(msg.data or b"null"))
        for msg in await stream_messages(bus, stream)
    ]


async def requests(bus: Bus) -> list[ServiceRequest]:
    return [
        msgspec.convert(body, ServiceRequest)
        for subject, _, body in await stored(bus, s.STREAM_REQUESTS)
        if subject != s.REQUEST_AMENDED
    ]


def call(sid: str, caller: str = ALICE, **extra: str) -> dict[str, str]:
    return {"CallSid": sid, "From": caller, "To": "+13125550000", "AccountSid": "AC1", **extra}


async def stream_counts(bus: Bus) -> dict[str, int]:
    """How many messages each stream intake_voice writes to holds (to prove nothing was published)."""
    return {
        stream: (await bus.js.stream_info(stream)).state.messages
        for stream in (s.STREAM_REQUESTS, s.STREAM_REPLIES)
    }


def process_env(
    bus: Mapping[str, str], spool: Path, *, port: int, http_port: int, workers: int
) -> dict[str, str]:
    """The environment of `python -m services.intake_voice` in production mode, signed with STRONG_TOKEN;
    `bus` holds the FRONTDESK_NATS_* settings it connects with."""
    return {
        **os.environ,
        "FRONTDESK_ENV": "production",
        **bus,
        "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
        "FRONTDESK_TWILIO_AUTH_TOKEN": STRONG_TOKEN,
        "FRONTDESK_VOICE_PORT": str(port),
        "FRONTDESK_VOICE_HTTP_PORT": str(http_port),
        "FRONTDESK_VOICE_PUBLIC_URL": PUBLIC,
        "FRONTDESK_VOICE_SPOOL_DIR": str(spool),
        "FRONTDESK_VOICE_WORKERS": str(workers),
    }
