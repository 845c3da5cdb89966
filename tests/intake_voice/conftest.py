"""The `harness` fixture: intake_voice's public and internal apps over ASGI, a real bus, a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import Secret
from services.intake_voice.app import Voice, build_app, internal_app
from services.intake_voice.config import VoiceConfig
from services.intake_voice.outbox import Outbox
from services.intake_voice.spool import Spool
from tests.intake_voice.harness import PUBLIC, SATURDAY, TOKEN, Harness
from tests.intake_voice.policy_text import write_policy


@pytest.fixture
async def harness(bus: Bus, tmp_path: Path) -> AsyncIterator[Harness]:
    cfg = VoiceConfig(public_url=PUBLIC, auth_token=Secret(TOKEN), publish_timeout=1.0)
    spool = Spool(tmp_path / "spool")
    clock = ManualClock(SATURDAY)
    voice = Voice(cfg=cfg, policy=write_policy(tmp_path), outbox=Outbox(spool, 1.0, bus), clock=clock)
    public = httpx.ASGITransport(app=build_app(voice))
    inside = httpx.ASGITransport(app=internal_app(voice))
    async with (
        httpx.AsyncClient(transport=public, base_url="http://testserver", timeout=10) as http,
        httpx.AsyncClient(transport=inside, base_url="http://internal", timeout=10) as internal,
    ):
        yield Harness(http=http, internal=internal, voice=voice, bus=bus, clock=clock, spool=spool)
