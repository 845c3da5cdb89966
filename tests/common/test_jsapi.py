"""JetStreamCalls: answers on our own inbox, as nats-py's js.publish and kv.get would have reported them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from nats.js.errors import APIError, NoStreamResponseError

from services.common.bus import WRONG_LAST, Bus
from services.common.config import BusConfig
from services.common.jsapi import JetStreamCalls
from services.contracts import subjects as s


async def test_concurrent_publishes_each_get_their_own_ack_and_a_repeated_id_is_a_duplicate(bus: Bus) -> None:
    acks = JetStreamCalls(bus.nc)
    subject = s.timeline_subject("acks")
    answers = await asyncio.gather(
        *(acks.publish(subject, b"{}", headers={"Nats-Msg-Id": f"m{i}"}, timeout=5) for i in range(50))
    )
    assert sorted(a.seq for a in answers) == sorted({a.seq for a in answers})  # 50 distinct sequences
    assert {a.stream for a in answers} == {s.STREAM_TIMELINE} and not any(a.duplicate for a in answers)
    again = await acks.publish(subject, b"{}", headers={"Nats-Msg-Id": "m7"}, timeout=5)
    assert again.duplicate and again.seq == answers[7].seq


async def test_no_stream_and_a_refused_write_raise_what_nats_py_raises(bus: Bus) -> None:
    acks = JetStreamCalls(bus.nc)
    with pytest.raises(NoStreamResponseError):
        await acks.publish("fd.nothing.here", b"x", headers=None, timeout=5)
    subject = f"$KV.{s.KV_ROUTER}.pubacks"
    first = await acks.publish(subject, b"1", headers={"Nats-Expected-Last-Subject-Sequence": "0"}, timeout=5)
    with pytest.raises(APIError) as refused:
        await acks.publish(subject, b"2", headers={"Nats-Expected-Last-Subject-Sequence": "0"}, timeout=5)
    assert refused.value.err_code in WRONG_LAST
    stale = {"Nats-Expected-Last-Subject-Sequence": str(first.seq - 1)}
    with pytest.raises(APIError):
        await acks.publish(subject, b"3", headers=stale, timeout=5)


async def test_a_service_user_gets_its_acks_on_its_own_inbox(
    service_bus_config: Callable[[str], BusConfig], bus: Bus
) -> None:
    """The inbox is under the user's own prefix: the only one its permissions let it subscribe to."""
    router = await Bus.connect(service_bus_config("router"), "tests-router")
    try:
        ack = await router.publish_bytes(s.timeline_subject("acks"), b"{}", msg_id="router-1")
        assert ack.seq > 0
        # A KV write at a revision: created once, then a second create is a lost race, not an error.
        assert await router.kv_create(s.KV_ROUTER, "owned", b"a") == b"a"
        assert await router.kv_create(s.KV_ROUTER, "owned", b"b") == b"a"
    finally:
        await router.close()


async def test_a_deleted_key_can_be_created_again(bus: Bus) -> None:
    """A create over a delete marker is refused as a wrong revision; the bus writes over the marker."""
    assert await bus.kv_create(s.KV_ROUTER, "again", b"1") == b"1"
    kv = await bus.kv(s.KV_ROUTER)
    await kv.delete("again")
    assert (await bus.kv_get(s.KV_ROUTER, "again"))[0] is None
    assert await bus.kv_create(s.KV_ROUTER, "again", b"2") == b"2"


async def test_last_value_reads_a_key_as_stored_and_a_removed_one_as_absent(bus: Bus) -> None:
    calls = JetStreamCalls(bus.nc)
    stream, subject = f"KV_{s.KV_ROUTER}", f"$KV.{s.KV_ROUTER}.read"
    assert await calls.last_value(stream, subject, timeout=5) == (None, 0)
    assert await bus.kv_create(s.KV_ROUTER, "read", b"v1") == b"v1"
    value, revision = await calls.last_value(stream, subject, timeout=5)
    assert value == b"v1" and revision > 0
    assert await bus.kv_update(s.KV_ROUTER, "read", lambda _: b"v2") == b"v2"
    assert await bus.kv_get(s.KV_ROUTER, "read") == (b"v2", revision + 1)
    kv = await bus.kv(s.KV_ROUTER)
    await kv.delete("read")
    assert await calls.last_value(stream, subject, timeout=5) == (None, 0)
    await kv.put("read", b"v3")
    await kv.purge("read")
    assert await bus.kv_get(s.KV_ROUTER, "read") == (None, 0)
    with pytest.raises(APIError):  # no such bucket: an error, never "absent"
        await calls.last_value("KV_no_such_bucket", "$KV.no_such_bucket.read", timeout=5)
