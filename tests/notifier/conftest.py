"""The `stack` fixture: a running notifier for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from tests.notifier.stack import Stack, running


@pytest.fixture
async def stack(bus: Bus, bus_config: BusConfig) -> AsyncIterator[Stack]:
    async with running(bus, bus_config) as started:
        yield started
