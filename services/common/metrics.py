"""Prometheus metrics, one registry per service instance (created in main, never at import time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.bus import Bus


class Metrics:
    """The counters ops read: what came in, what was refused, how it was routed, what went out."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests_received = self._counter(
            "frontdesk_requests_received", "Requests received, by channel", "channel"
        )
        self.messages_refused = self._counter(
            "frontdesk_messages_refused", "Messages refused, by reason", "reason"
        )
        self.routing_decisions = self._counter(
            "frontdesk_routing_decisions", "Routing decisions, by disposition", "disposition"
        )
        self.outbound_sent = self._counter("frontdesk_outbound_sent", "SMS and email sent, by kind", "kind")
        self.outbound_failed = self._counter(
            "frontdesk_outbound_failed", "SMS and email failed, by kind and reason", "kind", "reason"
        )
        self.tickets_at_risk = self._counter(
            "frontdesk_tickets_at_risk", "Tickets whose warn-before time passed unaccepted"
        )
        self.tickets_breached = self._counter(
            "frontdesk_tickets_breached", "Tickets whose response_due passed unaccepted"
        )
        self.consumer_lag = self._gauge(
            "frontdesk_consumer_lag", "Messages pending or unacked on a durable consumer", "durable"
        )
        self.timers_pending = self._gauge("frontdesk_timers_pending", "Durable timers waiting to fire")

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)


async def watch_consumer_lag(
    metrics: Metrics, bus: Bus, consumers: list[tuple[str, str]], stop: asyncio.Event, *, every: float = 5.0
) -> None:
    """Keep the consumer-lag gauge current; a failed lookup keeps the last value."""
    while not stop.is_set():
        for stream, durable in consumers:
            with contextlib.suppress(Exception):
                metrics.consumer_lag.labels(durable).set(await bus.pending(stream, durable))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


class _StorageCollector(Collector):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        storage = self.bus.storage
        yield CounterMetricFamily(
            "frontdesk_storage_refused", "Writes JetStream refused for lack of space", value=storage.refusals
        )
        yield GaugeMetricFamily(
            "frontdesk_storage_failing", "1 while JetStream refuses our writes (/readyz is 503 then)",
            value=0 if storage.ok else 1,
        )  # fmt: skip


def follow_storage(registry: CollectorRegistry, bus: Bus) -> None:
    """Expose the bus's storage refusals in `registry` (read at scrape time)."""
    registry.register(_StorageCollector(bus))
