"""Fixtures of the compose suites: the engine for the whole session (started and stopped here if needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compose.engine import DockerEngine, EngineUnavailable

# Why the engine could not start, kept so that every later test fails at once with the same reason
# instead of trying (and waiting for) another start.
unavailable: list[str] = []


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    if unavailable:
        pytest.fail(unavailable[0], pytrace=False)
    docker = DockerEngine()
    try:
        docker.start()
    except EngineUnavailable as exc:
        docker.stop()
        unavailable.append(f"no Docker engine: {exc}")
        # A missing engine is a failure with its reason, never a skip: CI must not pass without Docker.
        pytest.fail(unavailable[0], pytrace=False)
    try:
        yield docker
    finally:
        docker.stop()
