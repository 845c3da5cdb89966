"""Streams, key-value buckets and the object store, created idempotently with the wanted replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
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
from services.common.config import Retention
from services.contracts import subjects as s

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
MB = 1024 * 1024
API_TIMEOUT = 10.0  # seconds for a stream or bucket to be created, updated or looked up


def streams(r: Retention) -> tuple[StreamConfig, ...]:
    """Work streams refuse writes when full (DiscardNew: the writer keeps the message and retries);
    dropping the oldest would silently lose requests nobody handled yet. The timeline is history: when
    full its oldest entries go."""

    # Duplicate windows are long on purpose: Nats-Msg-Id de-duplication is what turns a retried
    # publish (intake resend after 451, a timer firing twice, a redelivered command) into a no-op.
    def work(name: str, subject: str, mb: int, days: float) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=[subject],
            max_bytes=mb * MB,
            max_age=days * DAY,
            duplicate_window=DAY,
            discard=DiscardPolicy.NEW,
        )

    return (
        work(s.STREAM_REQUESTS, s.REQUESTS_ALL, r.requests_mb, r.requests_days),
        work(s.STREAM_REPLIES, s.REPLIES_ALL, r.replies_mb, r.replies_days),
        work(s.STREAM_NOTIFY, s.NOTIFY_ALL, r.notify_mb, r.notify_days),
        work(s.STREAM_OUTBOX, s.OUTBOX_ALL, r.outbox_mb, r.outbox_days),
        replace(
            work(s.STREAM_TIMELINE, s.TIMELINE_ALL, r.timeline_mb, r.timeline_days), discard=DiscardPolicy.OLD
        ),
        work(s.STREAM_DLQ, s.DLQ_ALL, r.dead_letters_mb, r.dead_letters_days),
    )


def buckets(r: Retention) -> tuple[KeyValueConfig, ...]:
    """A TTL only where a key family should expire; tickets, timers and opt-outs never do."""
    return (
        KeyValueConfig(bucket=s.KV_TICKETS, history=5, max_bytes=r.tickets_mb * MB),
        KeyValueConfig(bucket=s.KV_SEQUENCES, history=1, max_bytes=r.sequences_mb * MB),
        KeyValueConfig(bucket=s.KV_ROUTER, history=1, max_bytes=r.router_mb * MB, ttl=r.router_days * DAY),
        KeyValueConfig(bucket=s.KV_THREADS, history=1, max_bytes=r.threads_mb * MB, ttl=r.threads_days * DAY),
        KeyValueConfig(bucket=s.KV_TIMERS, history=1, max_bytes=r.timers_mb * MB),
        KeyValueConfig(
            bucket=s.KV_OUTBOUND, history=1, max_bytes=r.outbound_mb * MB, ttl=r.outbound_days * DAY
        ),
        KeyValueConfig(bucket=s.KV_CONTACTS, history=1, max_bytes=r.contacts_mb * MB),
        KeyValueConfig(bucket=s.KV_WINDOWS, history=1, max_bytes=r.windows_mb * MB, ttl=r.windows_days * DAY),
        # Redeliveries come within minutes; a week is ample and keeps the bucket from growing forever.
        KeyValueConfig(bucket=s.KV_SEEN, history=1, max_bytes=r.seen_mb * MB, ttl=r.seen_days * DAY),
    )


async def ensure(js: JetStreamContext, replicas: int = 1, retention: Retention | None = None) -> None:
    """Create or update everything Frontdesk needs, with its limits (run by ops: a service user may not)."""
    r = retention or Retention()
    for config in streams(r):
        wanted = replace(
            config,
            num_replicas=replicas,
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
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
    for bucket_config in buckets(r):
        kv = replace(bucket_config, replicas=replicas, storage=StorageType.FILE)
        await _create_or_limit(js, f"KV_{kv.bucket}", kv.max_bytes, kv.ttl, js.create_key_value(kv))
    objects = ObjectStoreConfig(
        bucket=s.OBJ_RAW,
        replicas=replicas,
        storage=StorageType.FILE,
        max_bytes=r.raw_mail_mb * MB,
        ttl=r.raw_mail_days * DAY,
    )
    await _create_or_limit(
        js,
        f"OBJ_{s.OBJ_RAW}",
        objects.max_bytes,
        objects.ttl,
        js.create_object_store(s.OBJ_RAW, config=objects),
    )
    log.info("topology ready", extra={"count": len(streams(r)) + len(buckets(r)) + 1})


async def _create_or_limit(
    js: JetStreamContext, stream: str, max_bytes: int | None, max_age: float | None, create: Awaitable[object]
) -> None:
    """Create a bucket; one made before its limits existed (or with others) gets today's limits."""
    try:
        await create
    except BadRequestError:
        info = await js.stream_info(stream)
        await js.update_stream(replace(info.config, max_bytes=max_bytes, max_age=max_age))


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
        await ensure(bus.admin, bus.cfg.replicas, bus.cfg.retention)
    finally:
        await bus.close()


if __name__ == "__main__":
    # `python -m services.common.topology` as the ops user: what the services wait for at start.
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_setup())
