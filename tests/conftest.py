"""Shared fixtures: a real nats-server (users and permissions on) with a temporary store, and a Bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from services.common import natsauth
from services.common.bus import Bus
from services.common.config import BusConfig, Retention, Secret
from services.common.natsserver import NatsServer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"


class AuthServer(NatsServer):
    """A NatsServer run with the checked-in permission map and fresh random passwords."""

    passwords: dict[str, str]
    auth_dir: Path

    def create_topology(self, retention: Retention | None = None) -> None:
        """What ops does before the services start: their own users may not create streams."""

        async def create() -> None:
            bus = await Bus.connect(self.config_for(retention=retention or Retention()), "topology-setup")
            try:
                await bus.ensure_topology()
            finally:
                await bus.close()

        asyncio.run(create())

    def service_env(self, user: str) -> dict[str, str]:
        """The environment a service process needs to reach this server as `user`."""
        return {
            "FRONTDESK_NATS_URL": self.url,
            "FRONTDESK_NATS_USER": user,
            "FRONTDESK_NATS_PASSWORD_FILE": str(self.auth_dir / f"{user}.password"),
        }

    def config_for(self, user: str = natsauth.OPS, **changes: object) -> BusConfig:
        fields: dict[str, object] = {"url": (self.url,), "publish_timeout": 2.0, **changes}
        return BusConfig(user=user, password=Secret(self.passwords[user]), **fields)  # type: ignore[arg-type]


def auth_server(folder: Path, *, extra: str = "", **options: object) -> AuthServer:
    """An AuthServer whose store and config live under `folder` (same folder = same store and users)."""
    auth = folder / "nats-auth"
    passwords = natsauth.ensure_secrets(auth)
    config = natsauth.write_server_config(auth, passwords, extra=extra)
    server = AuthServer(store_dir=folder / "jetstream", config_file=config, **options)  # type: ignore[arg-type]
    server.passwords = passwords
    server.auth_dir = auth
    return server


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[AuthServer]:
    server = auth_server(tmp_path, log_file=tmp_path / "nats.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bus_config(nats_server: AuthServer) -> BusConfig:
    """The ops user: tests may do everything."""
    return nats_server.config_for(natsauth.OPS)


@pytest.fixture
def service_bus_config(nats_server: AuthServer) -> Callable[[str], BusConfig]:
    """BusConfig for one service user (`intake_email`, `router`, ...), to prove its permissions."""
    return nats_server.config_for


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
