"""JetStream calls (publish, KV write, a subject's last message) answered on one inbox of ours."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import Header, PubAck
from nats.js.errors import APIError, NoStreamResponseError


class _Error(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Answer(msgspec.Struct):
    """A PubAck or an error, as JetStream answers a publish (unknown fields ignored)."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    domain: str | None = None
    error: _Error | None = None


class _Stored(msgspec.Struct):
    seq: int = 0
    hdrs: str | None = None  # base64 of the NATS header block
    data: str | None = None  # base64


class _Found(msgspec.Struct):
    """STREAM.MSG.GET's answer: the message, or an error (404 when the subject holds nothing)."""

    message: _Stored | None = None
    error: _Error | None = None


_answer = msgspec.json.Decoder(_Answer).decode
_found = msgspec.json.Decoder(_Found).decode
_NO_RESPONDERS = "503"
_NO_MESSAGE = 10037  # JSNoMessageFoundErr: the subject holds nothing (also code 404, as a missing stream)
_KV_OPERATION = b"kv-operation"
_REMOVED = (b"DEL", b"PURGE")


class JetStreamCalls:
    """A Bus's publishes, KV writes and KV reads, without nats-py's per-call overhead (KV deletes,
    watches and the object store, none of them per request, stay with nats-py).

    nats-py's `js.publish` and `kv.get` go through `nc.request`: a fresh random token (an os.urandom
    call), a wait_for, a done-callback and a JSON decode into a dataclass per call, and a KV read parses
    the stored headers with the stdlib email parser: together a good part of a service's CPU per
    request. Here the answers arrive on one wildcard subscription of our own inbox, tokens are a counter
    (the inbox itself is unique per connection), there is one timeout, and answers are decoded by
    msgspec. Reads still go to the stream leader (STREAM.MSG.GET, not a direct get that a lagging
    replica may answer). Errors are nats-py's own classes, so callers that look at `err_code` (a lost
    compare-and-set, a full store) see what they saw before.
    """

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self._prefix = ""
        self._subscribing = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._next = 0

    async def _inbox(self) -> str:
        if not self._prefix:
            async with self._subscribing:
                if not self._prefix:
                    # Under the user's own inbox prefix: the only subjects a service may subscribe to.
                    prefix = self.nc.new_inbox() + "."
                    await self.nc.subscribe(prefix + "*", cb=self._answered)
                    self._prefix = prefix
        return self._prefix

    async def _answered(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject[len(self._prefix) :])
        if future is not None and not future.done():  # a late answer to a call given up on is dropped
            future.set_result(msg)

    async def request(
        self, subject: str, payload: bytes, *, headers: dict[str, Any] | None, timeout: float
    ) -> Msg:
        """Send and await the answer; raises TimeoutError after `timeout` (which also bounds nats-py's
        flush of a full pending buffer while disconnected), NoStreamResponseError when nothing answers."""
        async with asyncio.timeout(timeout):
            prefix = await self._inbox()
            self._next += 1
            token = str(self._next)
            future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
            self._waiting[token] = future
            try:
                await self.nc.publish(subject, payload, reply=prefix + token, headers=headers)
                msg = await future
            finally:
                self._waiting.pop(token, None)
        if msg.headers and msg.headers.get(Header.STATUS) == _NO_RESPONDERS:
            raise NoStreamResponseError
        return msg

    async def publish(
        self, subject: str, payload: bytes, *, headers: dict[str, Any] | None, timeout: float
    ) -> PubAck:
        """Publish and return JetStream's acknowledgment; raises its error answer as nats-py would."""
        answer = _answer((await self.request(subject, payload, headers=headers, timeout=timeout)).data)
        if answer.error is not None:
            _raise(answer.error)
        return PubAck(stream=answer.stream, seq=answer.seq, domain=answer.domain, duplicate=answer.duplicate)

    async def last_value(
        self, stream: str, subject: str, *, timeout: float, removed_revision: bool = False
    ) -> tuple[bytes | None, int]:
        """The last message stored on `subject` as a KV entry: (value, revision), or (None, 0) when
        there is none or it is a delete or purge marker. With `removed_revision`, a marker reads as
        (None, its revision): what a compare-and-set must name to write over a deleted key."""
        request = msgspec.json.encode({"last_by_subj": subject})
        msg = await self.request(f"$JS.API.STREAM.MSG.GET.{stream}", request, headers=None, timeout=timeout)
        found = _found(msg.data)
        if found.error is not None:
            if found.error.err_code == _NO_MESSAGE:
                return None, 0
            _raise(found.error)  # a missing stream is an error, not an absent key
        stored = found.message
        if stored is None:
            return None, 0
        if stored.hdrs and _removed(base64.b64decode(stored.hdrs)):
            return None, (stored.seq if removed_revision else 0)
        # An empty value reads as None, as nats-py's KV entry has it.
        return (base64.b64decode(stored.data) if stored.data else None), stored.seq


def _removed(block: bytes) -> bool:
    """Whether a NATS header block marks a KV delete or purge."""
    for line in block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == _KV_OPERATION and value.strip() in _REMOVED:
            return True
    return False


def _raise(error: _Error) -> None:
    fields: dict[str, Any] = {
        "code": error.code,
        "err_code": error.err_code,
        "description": error.description,
    }
    # Always raises: nats-py's class for the code (NotFoundError, ...), APIError for any other.
    raise APIError.from_error(fields)
