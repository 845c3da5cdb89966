"""connection.py: aiosmtpd finds its hooks without a full dir(); addresses and DATA read as aiosmtpd does."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from services.common.bus import Bus
from services.common.clock import SystemClock
from services.intake_email.app import Intake
from services.intake_email.config import SmtpConfig
from services.intake_email.connection import BlockData, Connection


def _session(intake: Intake, **options: object) -> Connection:
    return Connection(intake, hostname="frontdesk.test", loop=asyncio.new_event_loop(), **options)


def test_sessions_find_every_command_hook_and_mechanism_without_listing_every_attribute() -> None:
    cfg = SmtpConfig()
    intake = Intake(cfg, Bus(NatsClient(), cfg.bus), SystemClock())
    session = _session(intake)
    everything = object.__dir__(session)
    assert set(session._smtp_methods) == {n[5:] for n in everything if n.startswith("smtp_")}
    assert {"HELO", "EHLO", "MAIL", "RCPT", "DATA", "QUIT", "STARTTLS"} <= set(session._smtp_methods)
    assert set(session._auth_methods) == {n[5:] for n in everything if n.startswith("auth_")}
    assert set(session._handle_hooks) == {"MAIL", "RCPT", "DATA"}


def _outcome(read: Callable[[str], object], arg: str) -> object:
    try:
        return read(arg)
    except Exception as exc:  # aiosmtpd's parser raises on some inputs ("<"): ours must do the same
        return type(exc)


ADDRESS_TEXT = st.text(alphabet="<>@.-_+!#$%&'*=?^`{|}~ \t()\"[]\\:;,aZ09é\r\n", max_size=40)


@settings(max_examples=3000, deadline=None)
@given(ADDRESS_TEXT, st.sampled_from(["", " SIZE=100", "SIZE=1 BODY=8BITMIME", " (c) x", "\t x"]))
def test_envelope_addresses_read_as_aiosmtpd_reads_them(text: str, params: str) -> None:
    cfg = SmtpConfig()
    intake = Intake(cfg, Bus(NatsClient(), cfg.bus), SystemClock())
    for limit in (0, 3):
        session = _session(intake)
        session.local_part_limit = limit
        for arg in (text, f"<{text}>{params}", f" <a{text}@b.example>{params}", f"<{text}@x-y.example>"):
            ours = _outcome(session._getaddr, arg)
            assert ours == _outcome(functools.partial(SMTP._getaddr, session), arg), arg
    session = _session(intake)
    assert session._getaddr("<jane.doe+x@acme.example> SIZE=100") == ("jane.doe+x@acme.example", "SIZE=100")


class _Recorder:
    """A handler that keeps each message's bytes and accepts it."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        self.contents.append(envelope.original_content)
        return "250 OK"


class _StockSmall(SMTP):
    line_length_limit = 24


class _BlockSmall(BlockData):
    line_length_limit = 24


async def _conversation(factory: Callable[[], SMTP], wire: bytes) -> bytes:
    """Everything the server says to a client that sends `wire` at once (pipelined), until it hangs up."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire)
        await writer.drain()
        said = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return said
    finally:
        server.close()
        await server.wait_closed()


DATA_PIECES = [b"a", b"b", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b"x" * 10, b"y" * 23]
TRANSACTION = b"MAIL FROM:<a@b.c>\r\nRCPT TO:<c@d.e>\r\nDATA\r\n"


async def test_data_read_in_blocks_answers_and_keeps_exactly_what_aiosmtpd_does() -> None:
    """Over a real socket, against aiosmtpd's own line-by-line DATA, with a small line and size limit."""
    rng = random.Random(16)
    verdicts: set[bytes] = set()
    for case in range(300):
        bodies = [b"".join(rng.choices(DATA_PIECES, k=rng.randrange(40))) for _ in range(rng.randrange(1, 3))]
        wire = b"HELO c\r\n" + b"".join(TRANSACTION + body + b"\r\n.\r\n" for body in bodies) + b"QUIT\r\n"
        size = rng.choice([30, 80, 0])
        answers = []
        for cls in (_StockSmall, _BlockSmall):
            handler = _Recorder()
            said = await _conversation(
                functools.partial(cls, handler, data_size_limit=size, hostname="h", ident="i"), wire
            )
            answers.append((said, handler.contents))
        assert answers[0] == answers[1], (case, wire)
        verdicts.update(reply[:3] for reply in answers[0][0].split(b"\r\n"))
    # The cases reached every verdict: accepted, a line too long, too much data.
    assert {b"250", b"500", b"552"} <= verdicts


async def test_a_shorter_timeout_set_later_still_ends_the_session_as_aiosmtpd_does() -> None:
    """aiosmtpd shortens the idle timeout to the PROXY-header one right after arming the full one."""
    for cls in (SMTP, BlockData):
        factory = functools.partial(cls, _Recorder(), hostname="h", timeout=60, proxy_protocol_timeout=0.2)
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await _conversation(factory, b"") == b""  # no PROXY header, no greeting: closed
        assert loop.time() - began < 5, cls
