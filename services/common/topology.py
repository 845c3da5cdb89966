"""Streams, key-value buckets and the object store, created idempotently with the wanted replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from services.common import natsauth
from services.contracts import subjects as s

log = logging.getLogger(__name__)

DAY = 24 * 3600.0

# Duplicate windows are long on purpose: Nats-Msg-Id de-duplication is what turns a retried
# publish (intake resend after 451, a timer firing twice, a redelivered command) into a no-op.
STREAMS: tuple[StreamConfig, ...] = (
    StreamConfig(name=s.STREAM_REQUESTS, subjects=[s.REQUESTS_ALL], max_age=90 * DAY, duplicate_window=DAY),
    StreamConfig(name=s.STREAM_REPLIES, subjects=[s.REPLIES_ALL], max_age=90 * DAY, duplicate_window=DAY),
    StreamConfig(name=s.STREAM_NOTIFY, subjects=[s.NOTIFY_ALL], max_age=30 * DAY, duplicate_window=DAY),
    StreamConfig(name=s.STREAM_OUTBOX, subjects=[s.OUTBOX_ALL], max_age=30 * DAY, duplicate_window=DAY),
    # The timeline is the client's history: kept until ops decide otherwise.
    StreamConfig(name=s.STREAM_TIMELINE, subjects=[s.TIMELINE_ALL], duplicate_window=DAY),
    StreamConfig(name=s.STREAM_DLQ, subjects=[s.DLQ_ALL], max_age=30 * DAY, duplicate_window=DAY),
)

BUCKETS: tuple[KeyValueConfig, ...] = (
    KeyValueConfig(bucket=s.KV_TICKETS, history=5),
    KeyValueConfig(bucket=s.KV_SEQUENCES, history=1),
    KeyValueConfig(bucket=s.KV_ROUTER, history=1),
    KeyValueConfig(bucket=s.KV_THREADS, history=1, ttl=365 * DAY),
    KeyValueConfig(bucket=s.KV_TIMERS, history=1),
    KeyValueConfig(bucket=s.KV_OUTBOUND, history=1, ttl=30 * DAY),
    KeyValueConfig(bucket=s.KV_CONTACTS, history=1),
    # Redeliveries come within minutes; a week is ample and keeps the bucket from growing forever.
    KeyValueConfig(bucket=s.KV_SEEN, history=1, ttl=7 * DAY),
)


async def ensure(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update everything Frontdesk needs. Safe to run from every service at start."""
    for config in STREAMS:
        wanted = replace(
            config,
            num_replicas=replicas,
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
        )
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            try:
                await js.add_stream(wanted)
            except BadRequestError:
                # Another replica created it between our check and our add: that is fine.
                await js.stream_info(config.name or "")
            continue
        await js.update_stream(wanted)
    for bucket in BUCKETS:
        await js.create_key_value(replace(bucket, replicas=replicas, storage=StorageType.FILE))
    await js.create_object_store(
        s.OBJ_RAW, config=ObjectStoreConfig(bucket=s.OBJ_RAW, replicas=replicas, storage=StorageType.FILE)
    )
    log.info("topology ready", extra={"count": len(STREAMS) + len(BUCKETS) + 1})


async def wait(js: JetStreamContext, user: str, *, stop: asyncio.Event | None = None) -> None:
    """Wait until the streams `user` may look at exist: a service user cannot create them, ops does."""
    streams = natsauth.visible_streams(user)
    delay = 0.2
    while True:
        missing = []
        for stream in streams:
            try:
                await js.stream_info(stream)
            except NotFoundError:
                missing.append(stream)
        if not missing:
            return
        log.warning("waiting for ops to create the topology", extra={"missing": ",".join(missing)})
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
        delay = min(delay * 2, 5.0)


async def _setup() -> None:
    # Imported here: the bus imports this module.
    from services.common.bus import Bus
    from services.common.config import load_bus

    bus = await Bus.connect(load_bus(), "topology-setup")
    try:
        await ensure(bus.js, bus.cfg.replicas)
    finally:
        await bus.close()


if __name__ == "__main__":
    # `python -m services.common.topology` as the ops user: what the services wait for at start.
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_setup())
