"""The whole stack in-process for the scenarios: nats-server, sandbox, intakes, router, notifier."""

from tests.e2e import stack as e2e

stack = e2e.stack
