"""Fixtures of the compose suites: the engine for the whole session (started and stopped here if needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compose.engine import DockerEngine, EngineUnavailable


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    docker = DockerEngine()
    try:
        docker.start()
    except EngineUnavailable as exc:
        docker.stop()
        # A missing engine is a failure with its reason, never a skip: CI must not pass without Docker.
        pytest.fail(f"no Docker engine: {exc}", pytrace=False)
    try:
        yield docker
    finally:
        docker.stop()
