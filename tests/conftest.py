"""Shared fixtures: a real nats-server on a random port with a temporary store, and a connected Bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.natsserver import NatsServer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bus_config(nats_server: NatsServer) -> BusConfig:
    return BusConfig(url=(nats_server.url,), publish_timeout=2.0)


@pytest.fixture
async def bus(bus_config: BusConfig) -> AsyncIterator[Bus]:
    connected = await Bus.connect(bus_config, "tests")
    await connected.ensure_topology()
    try:
        yield connected
    finally:
        await connected.close()


def corpus(name: str) -> Path:
    """A folder of ../shared/corpora, or skip the test cleanly when it is absent."""
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"../shared/corpora/{name} not present")
    return path
