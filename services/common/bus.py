"""The NATS JetStream bus: connect forever, publish with de-duplication, consume durably, KV and objects."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import ObjectInfo, ObjectMetaOptions, PubAck
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore
from nats.nuid import NUID

from services.common import natsauth, topology
from services.common.config import BusConfig
from services.common.jsapi import JetStreamCalls
from services.common.storage import StorageHealth
from services.contracts import subjects as s

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
_encoder = msgspec.json.Encoder()
# Object chunks as nats-py writes them (any nats-py reader can read ours), and how many of them are in
# flight at once: 16 x 128 KiB stays under the client's 2 MiB pending buffer for a 25 MB message.
_CHUNK = 128 * 1024
_CHUNK_WINDOW = 16


class PublishFailed(Exception):
    """JetStream did not acknowledge a publish in time: the caller must not report success."""


class Transient(Exception):
    """A handler failure worth retrying later (nak with delay)."""


class Poison(Exception):
    """A message that will never be handled: dead-letter it now."""


class KvEntry(NamedTuple):
    """A KV value with its revision; (None, 0) when the key is absent or deleted."""

    value: bytes | None
    revision: int
    written: bool = False  # from kv_step: this call stored the value (rather than leaving the key)


class Bus:
    def __init__(self, nc: NatsClient, cfg: BusConfig) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=cfg.publish_timeout)
        # Creating a stream, bucket or consumer is a meta-layer write the server fsyncs, and at start
        # every service asks at once: it may take far longer than a publish, so it gets its own deadline.
        self.admin: JetStreamContext = nc.jetstream(timeout=max(cfg.publish_timeout, topology.API_TIMEOUT))
        self.cfg = cfg
        self._kv: dict[str, KeyValue] = {}
        self._objects: ObjectStore | None = None
        self._nuid = NUID()
        self._cleanups: set[asyncio.Task[None]] = set()
        self.storage = StorageHealth()
        self._calls = JetStreamCalls(nc)  # publishes, KV writes and reads: see there why not nats-py's

    @classmethod
    async def connect(cls, cfg: BusConfig, name: str, *, stop: asyncio.Event | None = None) -> Bus:
        """Connect, retrying the first connection until it works (or `stop` is set)."""
        opened: list[NatsClient] = []  # the client, once connected: tells our own close from a lost server
        options: dict[str, Any] = {
            "servers": list(cfg.url),
            "name": name,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,  # reconnect forever: intake must come back by itself
            "reconnect_time_wait": 0.5,
            "connect_timeout": 2,
            "ping_interval": 5,
            "max_outstanding_pings": 3,
            "error_cb": _log_error,
            "disconnected_cb": _disconnected_logger(opened),
            "reconnected_cb": _log_reconnected,
            # Replies come to this user's own inbox: the only subjects it may subscribe to.
            "inbox_prefix": natsauth.inbox_prefix(cfg.user),
        }
        if cfg.user:
            options["user"] = cfg.user
            options["password"] = cfg.password.reveal()
        if cfg.token:
            options["token"] = cfg.token.reveal()
        if cfg.creds:
            options["user_credentials"] = cfg.creds
        delay = 0.2
        while True:
            try:
                nc = await nats.connect(**options)
                opened.append(nc)
                return cls(nc, cfg)
            except Exception as exc:
                if stop is not None and stop.is_set():
                    raise
                log.warning("nats not reachable yet, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def ensure_topology(self, *, stop: asyncio.Event | None = None) -> None:
        """Create the topology (ops), or wait for ops to have created it (a service user may not)."""
        if natsauth.manages_topology(self.cfg.user):
            await topology.ensure(self.admin, self.cfg.replicas, self.cfg.retention)
        else:
            await topology.wait(self.admin, self.cfg.user, stop=stop)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def ready(self) -> bool:
        """Connected, and JetStream stored our last write (a full store makes the service not ready)."""
        return self.connected and self.storage.ok

    async def close(self) -> None:
        # Drain flushes what we published; without a server it would wait for drain_timeout (30 s),
        # which makes SIGTERM look like a hang, so only drain while connected, and briefly.
        if self.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 5.0)
        if not self.nc.is_closed:
            await self.nc.close()
        # On Python 3.11, asyncio.wait_for can swallow a cancellation that races with the
        # connect it wraps; nats-py's reconnect loop then keeps running after close() and
        # blocks loop shutdown. Cancel it until it really ends (bounded).
        task: asyncio.Task[None] | None = getattr(self.nc, "_reconnection_task", None)
        for _ in range(50):
            if task is None or task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=0.1)

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        message: msgspec.Struct,
        *,
        msg_id: str,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        """Publish and wait for the PubAck. A duplicate Msg-Id is acknowledged, not stored twice."""
        return await self.publish_bytes(
            subject, _encoder.encode(message), msg_id=msg_id, timeout=timeout, headers=headers
        )

    async def publish_bytes(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        hdrs = {"Nats-Msg-Id": msg_id, **(headers or {})}
        wait = self.cfg.publish_timeout if timeout is None else timeout
        try:
            ack = await self._calls.publish(subject, payload, headers=hdrs, timeout=wait)
        except Exception as exc:
            self.storage.observe(exc)
            raise PublishFailed(f"{subject}: {exc!r}") from exc
        self.storage.stored()
        return ack

    # -- objects ------------------------------------------------------------------------------

    async def put_object(self, data: bytes, *, prefix: str, timeout: float | None = None) -> str:
        """Store a payload under a content-addressed name; returns the name once JetStream holds it.

        Readable with nats-py's ObjectStore (same chunk and meta subjects, same meta JSON). Unlike
        `ObjectStore.put`, identical bytes already stored are not uploaded again, and the chunks are
        pipelined instead of one awaited publish each.
        """
        digest = hashlib.sha256(data).digest()
        name = f"{prefix}/{digest.hex()}"
        wait = self.cfg.publish_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(max(wait, len(data) / 2_000_000)):
                await self._put(name, data, digest)
        except Exception as exc:
            self.storage.observe(exc)
            raise PublishFailed(f"object {name}: {exc!r}") from exc
        self.storage.stored()
        return name

    async def _put(self, name: str, data: bytes, digest: bytes) -> None:
        stream = f"OBJ_{s.OBJ_RAW}"
        meta_subject = f"$O.{s.OBJ_RAW}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"
        digest_text = "SHA-256=" + base64.urlsafe_b64encode(digest).decode()
        # Asked of the stream leader (not a direct get, which a lagging replica may answer).
        try:
            last = await self.js.get_last_msg(stream, meta_subject)
            existing: ObjectInfo | None = ObjectInfo.from_response(json.loads(last.data or b"{}"))
        except NotFoundError:
            existing = None
        if existing is not None and not existing.deleted and existing.digest == digest_text:
            # Content-addressed: the same name and digest means these very bytes are already durable
            # (a resend after 451, an attachment seen before). Uploading again would only add garbage.
            return
        nuid = self._nuid.next().decode()
        chunk_subject = f"$O.{s.OBJ_RAW}.C.{nuid}"
        chunks = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)]
        try:
            # Chunks go out in windows and are acked together; the meta names them, so it is published
            # only once every chunk is acked: a meta must never point at chunks that are not stored.
            for start in range(0, len(chunks), _CHUNK_WINDOW):
                window = chunks[start : start + _CHUNK_WINDOW]
                await asyncio.gather(*(self.js.publish(chunk_subject, chunk) for chunk in window))
            info = ObjectInfo(
                name=name,
                bucket=s.OBJ_RAW,
                nuid=nuid,
                size=len(data),
                chunks=len(chunks),
                digest=digest_text,
                mtime=datetime.now(UTC).isoformat(),
                options=ObjectMetaOptions(max_chunk_size=_CHUNK),
            )
            await self.js.publish(
                meta_subject, json.dumps(info.as_dict()).encode(), headers={"Nats-Rollup": "sub"}
            )
        except BaseException:
            # No meta names these chunks: drop them in the background, so the failure (451) is reported
            # now rather than after yet another round trip to a server that may be gone.
            self._purge_later(stream, chunk_subject)
            raise
        if existing is not None and existing.nuid:
            # A deleted or damaged earlier version: its chunks are garbage now that the new meta is acked.
            self._purge_later(stream, f"$O.{s.OBJ_RAW}.C.{existing.nuid}")

    def _purge_later(self, stream: str, subject: str) -> None:
        async def purge() -> None:
            try:
                await self.js.purge_stream(stream, subject=subject)
            except Exception as exc:
                log.warning("object chunks not purged", extra={"subject": subject, "error": repr(exc)})

        task = asyncio.create_task(purge())
        # The loop keeps only weak references to tasks: hold this one until it is done.
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def get_object(self, name: str) -> bytes:
        if self._objects is None:
            self._objects = await self.js.object_store(s.OBJ_RAW)
        result = await self._objects.get(name)
        return result.data or b""

    # -- key-value ----------------------------------------------------------------------------

    async def kv(self, bucket: str) -> KeyValue:
        if bucket not in self._kv:
            self._kv[bucket] = await self.js.key_value(bucket)
        return self._kv[bucket]

    async def kv_get(
        self, bucket: str, key: str, *, removed_revision: bool = False
    ) -> tuple[bytes | None, int]:
        """(value, revision); (None, 0) when absent or deleted (with `removed_revision`, a deleted key's
        revision is its delete marker's: what a compare-and-set names to write over it)."""
        return await self._calls.last_value(
            f"KV_{bucket}",
            f"$KV.{bucket}.{key}",
            timeout=self.cfg.publish_timeout,
            removed_revision=removed_revision,
        )

    async def kv_update(
        self,
        bucket: str,
        key: str,
        mutate: Callable[[bytes | None], bytes | None],
        *,
        attempts: int = 50,
    ) -> bytes | None:
        """Compare-and-set: apply `mutate` to the current value until no one raced us.

        `mutate` returns the new value, or None to leave the key as it is.
        Returns the value that is stored afterwards.
        """
        stored, _ = await self.kv_step(bucket, key, lambda value: (mutate(value), None), attempts=attempts)
        return stored.value

    async def kv_create(self, bucket: str, key: str, value: bytes) -> bytes:
        """Store `value` unless the key holds something already; returns what is stored.

        One round trip when the key is new (the usual case): it is created without reading it first.
        """
        stored, _ = await self.kv_step(
            bucket, key, lambda current: (None if current is not None else value, None), seen=KvEntry(None, 0)
        )
        assert stored.value is not None
        return stored.value

    async def kv_step(
        self,
        bucket: str,
        key: str,
        step: Callable[[bytes | None], tuple[bytes | None, R]],
        *,
        seen: KvEntry | None = None,
        attempts: int = 50,
    ) -> tuple[KvEntry, R]:
        """The one compare-and-set loop of the code base.

        `step` gets the current value and returns (the new value or None to leave the key, a result);
        returns the entry as stored afterwards with the result of the step that stood, so nothing has
        to be carried out of `step` by a closure. `seen` is the entry as the caller last knew it: it
        skips the first read (one round trip, not two) and a stale one is refused by the server.
        """
        for _ in range(attempts):
            # A deleted key reads with its marker's revision, so the write below stands on the first try.
            current = (
                seen if seen is not None else KvEntry(*await self.kv_get(bucket, key, removed_revision=True))
            )
            seen = None
            new, result = step(current.value)
            if new is None:
                return current._replace(written=False), result
            try:
                revision = await self.kv_put(bucket, key, new, last=current.revision)
            except Exception as exc:
                if _raced(exc):
                    await asyncio.sleep(0)
                    continue
                raise
            return KvEntry(new, revision, written=True), result
        raise Transient(f"kv {bucket}/{key}: too much contention")

    async def kv_put(self, bucket: str, key: str, value: bytes, *, last: int | None = None) -> int:
        """Store `value` at `key` and return its revision; with `last`, only if that is the key's last
        revision (0: the key holds nothing), else the server refuses (see `_raced`)."""
        headers = None if last is None else {"Nats-Expected-Last-Subject-Sequence": str(last)}
        try:
            ack = await self._calls.publish(
                f"$KV.{bucket}.{key}", value, headers=headers, timeout=self.cfg.publish_timeout
            )
        except Exception as exc:
            self.storage.observe(exc)  # a full store makes the service not ready; a lost race does not
            raise
        self.storage.stored()
        return int(ack.seq)

    # -- consuming ----------------------------------------------------------------------------

    async def pending(self, stream: str, durable: str) -> int:
        info = await self.js.consumer_info(stream, durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


def _raced(exc: Exception) -> bool:
    """Someone else wrote the key between our read and our write: read it again and retry."""
    # nats-py's KeyWrongLastSequenceError, or JetStream's own code for it in an APIError.
    return isinstance(exc, KeyWrongLastSequenceError) or getattr(exc, "err_code", None) in WRONG_LAST


# JSStreamWrongLastSequenceErrF / ...ConstantErr: a KV write at a revision the key has moved past.
WRONG_LAST = (10071, 10164)


async def _log_error(exc: Exception) -> None:
    log.warning("nats error", extra={"error": repr(exc)})


def _disconnected_logger(opened: list[NatsClient]) -> Callable[[], Awaitable[None]]:
    async def disconnected() -> None:
        # A normal stop closes (or drains) the connection itself: that is no news worth a warning.
        if opened and (opened[0].is_closed or opened[0].is_draining):
            return
        log.warning("nats disconnected")

    return disconnected


async def _log_reconnected() -> None:
    log.info("nats reconnected")
