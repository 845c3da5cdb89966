"""Bus semantics against a real nats-server: de-duplication, nak redelivery, dead letters, KV CAS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest

from services.common.bus import Bus, Poison, PublishFailed
from services.common.config import BusConfig
from services.common.consumer import Consumer, ConsumerSpec, Delivery
from services.common.natsserver import NatsServer
from services.contracts import Sender, ServiceRequest, TimelineEntry
from services.contracts import subjects as s
from tests.support import until

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def request(n: int) -> ServiceRequest:
    return ServiceRequest(
        id=f"req-{n}", channel="email", received_at=NOW, sender=Sender(email=f"c{n}@example.com")
    )


async def drain(consumer: Consumer[ServiceRequest], until: asyncio.Event, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await asyncio.wait_for(until.wait(), timeout)
    finally:
        stop.set()
        await task


async def test_publish_deduplicates_on_msg_id(bus: Bus) -> None:
    first = await bus.publish(s.request_subject("email"), request(1), msg_id="req-1")
    again = await bus.publish(s.request_subject("email"), request(1), msg_id="req-1")
    other = await bus.publish(s.request_subject("email"), request(2), msg_id="req-2")
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq
    info = await bus.js.stream_info(s.STREAM_REQUESTS)
    assert info.state.messages == 2
    assert other.seq == first.seq + 1


async def test_nak_redelivers_then_succeeds(bus: Bus) -> None:
    await bus.publish(s.request_subject("email"), request(1), msg_id="req-1")
    attempts: list[int] = []
    done = asyncio.Event()

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        if delivery.num_delivered < 3:
            raise ConnectionError("backend briefly unavailable")
        done.set()

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-nak", s.REQUESTS_ALL, backoff=(0.05, 0.05, 0.05))
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    await drain(consumer, done)
    assert attempts == [1, 2, 3]
    assert await bus.pending(s.STREAM_REQUESTS, "t-nak") == 0


async def test_dead_letters_after_max_deliveries(bus: Bus) -> None:
    await bus.publish(s.request_subject("email"), request(1), msg_id="req-1")
    attempts: list[int] = []

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        raise RuntimeError("always fails")

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-dlq", s.REQUESTS_ALL, max_deliver=3, backoff=(0.05,))
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await until(lambda: consumer.dead_lettered, 10, "a dead letter")
    stop.set()
    await task
    assert attempts == [1, 2, 3]
    msg = await bus.js.get_last_msg(s.STREAM_DLQ, s.dlq_subject(s.STREAM_REQUESTS))
    assert msg.headers is not None
    assert msg.headers["Fd-Durable"] == "t-dlq"
    assert msg.headers["Fd-Deliveries"] == "3"
    assert msg.data is not None
    assert msgspec.json.decode(msg.data, type=ServiceRequest).id == "req-1"


async def test_poison_and_undecodable_go_straight_to_dead_letters(bus: Bus) -> None:
    await bus.publish_bytes(s.request_subject("email"), b"{not json", msg_id="garbage")
    await bus.publish(s.request_subject("email"), request(2), msg_id="req-2")
    seen: list[str] = []

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        seen.append(req.id)
        raise Poison("client id is not in the policy")

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-poison", s.REQUESTS_ALL)
    consumer = Consumer(bus, spec, msgspec.json.Decoder(ServiceRequest).decode, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await until(lambda: consumer.dead_lettered == 2, 10, "two dead letters")
    stop.set()
    await task
    assert seen == ["req-2"]  # handled once, never retried
    info = await bus.js.stream_info(s.STREAM_DLQ)
    assert info.state.messages == 2


async def test_kv_compare_and_set_under_contention(bus: Bus) -> None:
    def bump(current: bytes | None) -> bytes:
        return str(int(current or b"1000") + 1).encode()

    numbers = await asyncio.gather(*(bus.kv_update(s.KV_SEQUENCES, "tickets", bump) for _ in range(40)))
    assert sorted(int(n or b"") for n in numbers) == list(range(1001, 1041))

    def append(current: bytes | None) -> bytes:
        return (current or b"") + b"x"

    await asyncio.gather(*(bus.kv_update(s.KV_ROUTER, "rr.test", append) for _ in range(20)))
    value, revision = await bus.kv_get(s.KV_ROUTER, "rr.test")
    assert value == b"x" * 20
    assert revision > 0


async def test_stale_revision_is_refused(bus: Bus) -> None:
    kv = await bus.kv(s.KV_TICKETS)
    rev = await kv.create("SR-1", b"a")
    await kv.update("SR-1", b"b", last=rev)
    with pytest.raises(Exception, match="wrong last sequence"):
        await kv.update("SR-1", b"c", last=rev)


async def test_objects_are_content_addressed(bus: Bus) -> None:
    data = b"From: a@example.com\r\n\r\n" + b"x" * 300_000
    name = await bus.put_object(data, prefix="raw")
    assert name == await bus.put_object(data, prefix="raw")
    assert await bus.get_object(name) == data


async def test_topology_is_idempotent(bus: Bus) -> None:
    await bus.ensure_topology()
    await bus.ensure_topology()
    names = {info.config.name for info in await bus.js.streams_info()}
    assert {s.STREAM_REQUESTS, s.STREAM_TIMELINE, s.STREAM_DLQ} <= names


async def test_publish_fails_fast_when_nats_is_down(nats_server: NatsServer, bus_config: BusConfig) -> None:
    bus = await Bus.connect(bus_config, "tests")
    await bus.ensure_topology()
    nats_server.kill()
    entry = TimelineEntry(id="t1", at=NOW, client_id="acme", kind="note", text="x", service="test")
    with pytest.raises(PublishFailed):
        await bus.publish(s.timeline_subject("acme"), entry, msg_id="t1", timeout=0.5)
    await bus.close()


async def test_lane_consumer_keeps_a_lane_in_order_and_overlaps_the_rest(bus: Bus) -> None:
    # Requests 1 and 3 share a lane; 2 has its own. 1 is held until 2 has run.
    def parity_lane(req: ServiceRequest) -> frozenset[str]:
        return frozenset({"odd" if int(req.id.split("-")[1]) % 2 else "even"})

    for n in (1, 2, 3):
        await bus.publish(s.request_subject("email"), request(n), msg_id=f"req-{n}")
    events: list[str] = []
    release_first = asyncio.Event()
    done = asyncio.Event()

    async def handle(req: ServiceRequest, delivery: Delivery) -> None:
        events.append(f"start {req.id}")
        if req.id == "req-1":
            await release_first.wait()
        elif req.id == "req-2":
            release_first.set()  # only reachable because 2 runs while 1 is still in flight
        events.append(f"end {req.id}")
        if events.count("end req-1") + events.count("end req-2") + events.count("end req-3") == 3:
            done.set()

    spec = ConsumerSpec(s.STREAM_REQUESTS, "t-lanes", s.REQUESTS_ALL)
    decode = msgspec.json.Decoder(ServiceRequest).decode
    consumer = Consumer(bus, spec, decode, handle, lanes=parity_lane, width=8)
    await drain(consumer, done)
    assert events.index("start req-2") < events.index("end req-1")  # different lanes overlapped
    assert events.index("end req-1") < events.index("start req-3")  # one lane never reordered
    assert await bus.pending(s.STREAM_REQUESTS, "t-lanes") == 0
