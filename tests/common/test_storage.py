"""JetStream refusing writes for space: the message is kept (not counted toward max_deliver, never termed
without a stored dead letter), the bus reports not ready and counts it; limits on every stream and bucket."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import msgspec
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError, ServiceUnavailableError
from prometheus_client import CollectorRegistry, generate_latest

from services.common import topology
from services.common.bus import Bus, Poison, PublishFailed
from services.common.config import Retention
from services.common.consumer import Consumer, ConsumerSpec, Delivery
from services.common.metrics import follow_storage
from services.common.storage import StorageHealth, is_storage_error
from services.common.topology import DAY, MB
from services.contracts import ServiceRequest
from services.contracts import subjects as s
from tests.support import email_request, until

SINK = "T_SINK"


async def fill(bus: Bus, stream: str, subject: str) -> None:
    """Publish until `stream` refuses: it is full."""
    for n in range(1000):
        try:
            await bus.publish_bytes(subject, b"x" * 1000, msg_id=f"fill-{stream}-{n}", timeout=1)
        except PublishFailed:
            return
    raise AssertionError(f"{stream} never filled")


async def test_storage_refusals_keep_the_message_and_flip_readiness(bus: Bus) -> None:
    await bus.js.add_stream(
        StreamConfig(name=SINK, subjects=["sink.>"], max_bytes=8192, discard=DiscardPolicy.NEW)
    )
    await fill(bus, SINK, "sink.fill")
    await bus.publish(s.request_subject("email"), email_request(1), msg_id="req-1")
    attempts: list[int] = []

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        # The work's own record: refused while the store is full.
        await bus.publish_bytes("sink.work", b"y" * 1000, msg_id=f"work-{req.id}", timeout=1)

    spec = ConsumerSpec(
        s.STREAM_REQUESTS, "t-full", s.REQUESTS_ALL, max_deliver=2, backoff=(0.05,), storage_backoff=(0.05,)
    )
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(lambda: len(attempts) >= 6, 15, "six deliveries")
        # Three times max_deliver, yet kept: not dead-lettered, still pending, the bus says not ready.
        assert consumer.dead_lettered == 0 and consumer.handled == 0
        assert not bus.ready and bus.storage.refusals >= 6
        assert await bus.pending(s.STREAM_REQUESTS, "t-full") == 1
        await bus.js.purge_stream(SINK)  # room again
        await until(lambda: consumer.handled == 1, 15, "handled once there is room")
    finally:
        stop.set()
        await task
    assert bus.ready
    assert await bus.pending(s.STREAM_REQUESTS, "t-full") == 0
    assert (await bus.js.stream_info(s.STREAM_DLQ)).state.messages == 0
    registry = CollectorRegistry()
    follow_storage(registry, bus)
    text = generate_latest(registry).decode()
    assert f"frontdesk_storage_refused_total {float(bus.storage.refusals)}" in text
    assert "frontdesk_storage_failing 0.0" in text


async def test_a_dead_letter_that_cannot_be_stored_keeps_the_message(bus: Bus) -> None:
    info = await bus.js.stream_info(s.STREAM_DLQ)
    await bus.js.update_stream(replace(info.config, max_bytes=8192))
    await fill(bus, s.STREAM_DLQ, s.dlq_subject("junk"))
    await bus.publish(s.request_subject("email"), email_request(2), msg_id="req-2")

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        raise Poison("never handled")

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-dlq-full", s.REQUESTS_ALL, storage_backoff=(0.05,))
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(lambda: bus.storage.refusals >= 3, 15, "three refused dead letters")
        assert consumer.dead_lettered == 0
        assert await bus.pending(s.STREAM_REQUESTS, "t-dlq-full") == 1
        await bus.js.purge_stream(s.STREAM_DLQ, subject=s.dlq_subject("junk"))
        await until(lambda: consumer.dead_lettered == 1, 15, "dead letter stored")
    finally:
        stop.set()
        await task
    msg = await bus.js.get_last_msg(s.STREAM_DLQ, s.dlq_subject(s.STREAM_REQUESTS))
    assert msg.headers is not None and msg.headers["Fd-Durable"] == "t-dlq-full"
    assert await bus.pending(s.STREAM_REQUESTS, "t-dlq-full") == 0


def test_storage_errors_are_recognised_through_their_causes() -> None:
    full = ServiceUnavailableError(code=503, err_code=10023, description="insufficient resources")
    try:
        try:
            raise full
        except Exception as exc:
            raise PublishFailed("fd.requests.email") from exc
    except PublishFailed as wrapped:
        assert is_storage_error(wrapped)
    assert is_storage_error(APIError(err_code=10077, description="maximum bytes exceeded"))
    assert not is_storage_error(APIError(err_code=10071, description="wrong last sequence"))
    assert not is_storage_error(TimeoutError())


async def test_every_stream_and_bucket_has_limits(bus: Bus) -> None:
    names = {info.config.name: info.config for info in await bus.js.streams_info()}
    r = Retention()
    for name in (s.STREAM_REQUESTS, s.STREAM_NOTIFY, s.STREAM_OUTBOX, s.STREAM_REPLIES, s.STREAM_DLQ):
        assert names[name].max_bytes and names[name].max_age, name
        assert names[name].discard == DiscardPolicy.NEW, name  # full: refuse, never drop unhandled work
    assert names[s.STREAM_TIMELINE].discard == DiscardPolicy.OLD
    assert names[s.STREAM_TIMELINE].max_age == r.timeline_days * DAY
    for stream, config in names.items():
        if stream and stream.startswith(("KV_", "OBJ_", "FD_")):
            assert config.max_bytes and config.max_bytes > 0, stream
    assert names[f"KV_{s.KV_WINDOWS}"].max_age == r.windows_days * DAY  # rate windows, help counters
    assert not names[f"KV_{s.KV_CONTACTS}"].max_age  # opt-outs never expire
    assert not names[f"KV_{s.KV_TICKETS}"].max_age and not names[f"KV_{s.KV_TIMERS}"].max_age
    assert names[f"OBJ_{s.OBJ_RAW}"].max_bytes == r.raw_mail_mb * MB


async def test_new_limits_reach_existing_buckets(bus: Bus) -> None:
    smaller = Retention(windows_mb=2, windows_days=3, raw_mail_mb=5)
    await topology.ensure(bus.js, 1, smaller)
    windows = await bus.js.stream_info(f"KV_{s.KV_WINDOWS}")
    assert (windows.config.max_bytes, windows.config.max_age) == (2 * MB, 3 * DAY)
    raw = await bus.js.stream_info(f"OBJ_{s.OBJ_RAW}")
    assert raw.config.max_bytes == 5 * MB


def test_readiness_returns_after_a_write_is_stored_or_a_quiet_hold() -> None:
    now = [100.0]
    health = StorageHealth(hold=30, now=lambda: now[0])
    assert health.ok
    health.refused()
    now[0] += 29
    assert not health.ok and health.refusals == 1
    health.stored()
    assert health.ok
    health.refused()
    now[0] += 31  # nobody wrote since: an intake no longer sent traffic must get the chance again
    assert health.ok and health.refusals == 2
