"""A normal start and stop prints no warnings, and library loggers stay quiet at INFO."""

from __future__ import annotations

import logging

import pytest

from services.common import logs
from services.common.bus import Bus
from services.common.config import BusConfig


async def test_closing_the_bus_is_not_reported_as_a_lost_server(
    bus_config: BusConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        bus = await Bus.connect(bus_config, "quiet")
        await bus.ensure_topology()
        await bus.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_twilio_sdk_request_logs_are_quiet_at_info() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup("notifier", "INFO")
        # The SDK logs every request and response at INFO on the "twilio.http_client" logger.
        assert not logging.getLogger("twilio.http_client").isEnabledFor(logging.INFO)
        assert logging.getLogger("twilio.http_client").isEnabledFor(logging.WARNING)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)  # one line per request
        assert logging.getLogger("services.notifier").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
