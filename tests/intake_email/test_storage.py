"""What the intake leaves in the object store: every chunk before its meta, nothing uploaded twice,
no request whose objects are missing. Real nats-server, real SMTP socket. Every mail here is stored as
an object (max_inline_raw=0), as any mail over the inline limit is."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from email.message import EmailMessage

import pytest
from nats.js.errors import NotFoundError

from services.common.bus import Bus
from services.common.config import BusConfig
from services.contracts import subjects as s
from services.contracts.requests import attachment_bytes
from tests.intake_email.stack import SUPPORT, config, running, send, stored

OBJ_STREAM = f"OBJ_{s.OBJ_RAW}"


def with_attachment(message_id: str, data: bytes, body: str = "See the attached log.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = SUPPORT
    msg["Subject"] = "Logs"
    msg["Message-ID"] = message_id
    msg.set_content(body)
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="log.bin")
    return msg.as_bytes()


async def object_messages(bus: Bus) -> int:
    return int((await bus.js.stream_info(OBJ_STREAM)).state.messages)


async def meta_exists(bus: Bus, name: str) -> bool:
    subject = f"$O.{s.OBJ_RAW}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"
    try:
        await bus.js.get_last_msg(OBJ_STREAM, subject)
    except NotFoundError:
        return False
    return True


async def test_attachment_is_stored_once_inside_the_raw_original(bus: Bus, bus_config: BusConfig) -> None:
    # 300 KB (400 KB as base64): four 128 KiB chunks, and a message big enough to be parsed off the loop.
    data = os.urandom(300_000)
    async with running(config(bus_config, max_inline_raw=0)) as cfg:
        replies = await send(cfg.port, with_attachment("<big@example.com>", data))
    assert replies[-1][0] == 250
    (req,) = await stored(bus)
    (att,) = req.attachments
    assert att.object_name == req.raw_ref and att.size == 300_000
    # The raw original is the only object: no second copy of the attachment beside it.
    assert not await meta_exists(bus, "att/" + hashlib.sha256(data).hexdigest())
    store = await bus.js.object_store(s.OBJ_RAW)
    info = await store.get_info(att.object_name)
    size, chunks = info.size or 0, info.chunks or 0
    assert chunks == -(-size // (128 * 1024)) and size > 400_000
    assert await object_messages(bus) == chunks + 1  # its chunks and its meta, nothing else
    # nats-py's reader checks the digest in the meta against the chunks it reads.
    assert attachment_bytes(att, (await store.get(att.object_name)).data or b"") == data


async def test_resend_and_repeated_attachment_upload_nothing_again(bus: Bus, bus_config: BusConfig) -> None:
    logo = os.urandom(5_000)
    first = with_attachment("<one@example.com>", logo)
    async with running(config(bus_config, max_inline_raw=0)) as cfg:
        assert (await send(cfg.port, first))[-1][0] == 250
        after_first = await object_messages(bus)
        assert (await send(cfg.port, first))[-1][0] == 250
        assert await object_messages(bus) == after_first
        # Another mail with the same attachment: only its own raw original is new (one chunk, one meta).
        assert (await send(cfg.port, with_attachment("<two@example.com>", logo)))[-1][0] == 250
        assert await object_messages(bus) == after_first + 2
    requests = await stored(bus)
    assert [r.thread.message_id for r in requests] == ["<one@example.com>", "<two@example.com>"]
    first_raw, second_raw = [await bus.get_object(r.raw_ref or "") for r in requests]
    assert attachment_bytes(requests[0].attachments[0], first_raw) == logo
    assert attachment_bytes(requests[1].attachments[0], second_raw) == logo


async def test_deleted_object_is_stored_again_on_resend(bus: Bus, bus_config: BusConfig) -> None:
    data = os.urandom(2_000)
    raw = with_attachment("<gone@example.com>", data)
    async with running(config(bus_config, max_inline_raw=0)) as cfg:
        assert (await send(cfg.port, raw))[-1][0] == 250
        (req,) = await stored(bus)
        name = req.attachments[0].object_name
        store = await bus.js.object_store(s.OBJ_RAW)
        await store.delete(name)
        assert (await send(cfg.port, raw))[-1][0] == 250
    assert attachment_bytes(req.attachments[0], (await store.get(name)).data or b"") == data


async def test_refused_chunk_gives_451_and_no_meta_and_no_request(bus: Bus, bus_config: BusConfig) -> None:
    # The server refuses any message over 4 KB: every chunk of this mail, but not a meta (~300 bytes).
    data = os.urandom(20_000)
    raw = with_attachment("<refused@example.com>", data)
    wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    async with running(config(bus_config, max_inline_raw=0)) as cfg:
        # After the intake ensured its topology, which would refuse a store configured differently.
        stream = await bus.js.stream_info(OBJ_STREAM)
        await bus.js.update_stream(dataclasses.replace(stream.config, max_msg_size=4096))
        replies = await send(cfg.port, raw)
        assert replies[-1] == (451, b"4.3.0 Temporarily unable to accept, try again")
        assert await stored(bus) == []
        for name in ("att/" + hashlib.sha256(data).hexdigest(), "raw/" + hashlib.sha256(wire).hexdigest()):
            assert not await meta_exists(bus, name), name
        await bus.js.update_stream(dataclasses.replace(stream.config, max_msg_size=-1))
        assert (await send(cfg.port, raw))[-1][0] == 250
    (req,) = await stored(bus)
    assert await bus.get_object(req.raw_ref or "") == wire
    assert attachment_bytes(req.attachments[0], wire) == data


@pytest.mark.parametrize("size", [0, 1, 128 * 1024, 128 * 1024 + 1])
async def test_put_object_chunk_edges(bus: Bus, size: int) -> None:
    data = os.urandom(size)
    name = await bus.put_object(data, prefix="edge")
    assert name == "edge/" + hashlib.sha256(data).hexdigest()
    assert await bus.get_object(name) == data
