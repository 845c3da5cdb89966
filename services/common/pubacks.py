"""JetStream writes whose answers (PubAcks, KV revisions) come back on one inbox of ours, msgspec-decoded."""

from __future__ import annotations

import asyncio
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


_decode = msgspec.json.Decoder(_Answer).decode
_NO_RESPONDERS = "503"
# JSStreamWrongLastSequenceErrF / ...ConstantErr: a KV write at a revision the key has moved past.
WRONG_LAST = (10071, 10164)


class PubAcks:
    """Publish to JetStream and await its answer, for every write of a Bus.

    nats-py's `js.publish` goes through `nc.request`: a fresh random token (an os.urandom call), a
    wait_for, a done-callback and a JSON decode into a dataclass per write, which is a good part of a
    service's CPU per request. Here the answers arrive on one wildcard subscription of our own inbox,
    tokens are a counter (the inbox itself is unique per connection), there is one timeout, and the
    answer is decoded by msgspec. Errors are nats-py's own (`APIError.from_error`), so callers that
    look at `err_code` (a lost compare-and-set, a full store) see what they saw before.
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
        if future is not None and not future.done():  # a late answer to a write given up on is dropped
            future.set_result(msg)

    async def publish(
        self, subject: str, payload: bytes, *, headers: dict[str, Any] | None, timeout: float
    ) -> PubAck:
        """Publish and return JetStream's acknowledgment; raises on an error answer or after `timeout`
        (which also bounds nats-py's flush of a full pending buffer while disconnected)."""
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
        answer = _decode(msg.data)
        if answer.error is not None:
            error = answer.error
            fields: dict[str, Any] = {"code": error.code, "err_code": error.err_code}
            fields["description"] = error.description
            APIError.from_error(fields)  # raises nats-py's class for the code (NotFoundError, ...)
            raise APIError(**fields)
        return PubAck(stream=answer.stream, seq=answer.seq, domain=answer.domain, duplicate=answer.duplicate)
