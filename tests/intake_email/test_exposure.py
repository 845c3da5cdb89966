"""Probes of an SMTP intake on the open internet: forged senders, idle sessions, big mail, postmaster."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time

import pytest

from services.common.bus import Bus
from services.common.config import BusConfig, ConfigError
from services.intake_email.config import MAX_INLINE_RAW, check, load_config
from tests.intake_email.senders import AUTHSERV_ID
from tests.intake_email.stack import SUPPORT, config, message, running, send, stored


def _greeting(source: str, port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    return sock, sock.recv(512)


async def test_one_address_cannot_take_every_session_slot(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, max_sessions=8, max_sessions_per_ip=5)) as cfg:
        idle = [await asyncio.to_thread(_greeting, "127.0.0.1", cfg.port) for _ in range(5)]
        try:
            assert all(greeting.startswith(b"220") for _, greeting in idle)
            extra, refused = await asyncio.to_thread(_greeting, "127.0.0.1", cfg.port)
            extra.close()
            assert refused.startswith(b"421 4.7.0 Too many connections from your address")

            def deliver_from_other_ip() -> dict[str, tuple[int, bytes]]:
                with smtplib.SMTP("127.0.0.1", cfg.port, timeout=10, source_address=("127.0.0.2", 0)) as c:
                    return c.sendmail("client@example.com", [SUPPORT], message())

            assert await asyncio.to_thread(deliver_from_other_ip) == {}
        finally:
            for sock, _ in idle:
                sock.close()
    assert len(await stored(bus)) == 1


async def test_an_idle_session_is_closed(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, idle_timeout=0.5)) as cfg:

        def wait_idle() -> bytes:
            sock, _ = _greeting("127.0.0.1", cfg.port)
            with sock:
                sock.settimeout(5)
                data = b""
                while chunk := sock.recv(512):  # until the server closes the connection
                    data += chunk
                return data

        farewell = await asyncio.to_thread(wait_idle)
    # Closed by the server well before the client's own 5 s timeout (aiosmtpd may say 421 first).
    assert farewell == b"" or farewell.startswith(b"421")


async def test_the_idle_timeout_counts_from_the_last_bytes_also_during_data(
    bus: Bus, bus_config: BusConfig
) -> None:
    raw = message(message_id="<slow@example.com>").replace(b"\n", b"\r\n")
    async with running(config(bus_config, idle_timeout=0.6)) as cfg:

        def converse() -> tuple[bytes, bytes, float]:
            sock, _ = _greeting("127.0.0.1", cfg.port)
            with sock, sock.makefile("rb") as replies:
                sock.settimeout(5)
                for command in (
                    b"HELO c.test",
                    b"MAIL FROM:<alice@example.com>",
                    f"RCPT TO:<{SUPPORT}>".encode(),
                ):
                    sock.sendall(command + b"\r\n")
                    assert replies.readline().startswith(b"250")
                sock.sendall(b"DATA\r\n")
                assert replies.readline().startswith(b"354")
                # A slow link: the whole message takes longer than the idle timeout, no pause does.
                for start in range(0, len(raw), len(raw) // 5 + 1):
                    sock.sendall(raw[start : start + len(raw) // 5 + 1])
                    time.sleep(0.25)
                sock.sendall(b".\r\n")
                accepted = replies.readline()
                # A client that stops in the middle of its data is dropped after the idle timeout.
                sock.sendall(
                    b"MAIL FROM:<alice@example.com>\r\n" + f"RCPT TO:<{SUPPORT}>\r\nDATA\r\n".encode()
                )
                assert [replies.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
                sock.sendall(b"Subject: half a message\r\n")
                started = time.monotonic()
                rest = replies.read()  # until the server closes the connection
                return accepted, rest, time.monotonic() - started

        accepted, rest, waited = await asyncio.to_thread(converse)
    assert accepted.startswith(b"250 2.0.0 OK em-")
    assert rest == b"" and 0.4 < waited < 3
    assert [r.thread.message_id for r in await stored(bus)] == ["<slow@example.com>"]


async def test_a_client_streaming_past_the_size_limit_is_dropped_after_the_idle_timeout(
    bus: Bus, bus_config: BusConfig
) -> None:
    async with running(config(bus_config, idle_timeout=0.6, max_size=4000)) as cfg:

        def stream_until_dropped() -> float:
            sock, _ = _greeting("127.0.0.1", cfg.port)
            with sock:
                sock.settimeout(5)
                sock.sendall(
                    b"HELO c.test\r\nMAIL FROM:<alice@example.com>\r\n" + f"RCPT TO:<{SUPPORT}>\r\n".encode()
                )
                sock.sendall(b"DATA\r\n")
                started = time.monotonic()
                try:
                    while time.monotonic() - started < 10:  # never the end line, never a pause
                        sock.sendall(b"x" * 70 + b"\r\n")
                        time.sleep(0.05)
                except OSError:  # the server closed the connection: a reset on our next send
                    pass
                return time.monotonic() - started

        streamed = await asyncio.to_thread(stream_until_dropped)
    # 4000 bytes take about 3 s at this pace; then the idle timeout (0.6 s) runs out, pauses or not.
    assert streamed < 6
    assert await stored(bus) == []


async def test_postmaster_is_accepted(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config)) as cfg:
        bare = await send(cfg.port, message(message_id="<p1@example.com>"), ["postmaster"])
        ours = await send(cfg.port, message(message_id="<p2@example.com>"), ["Postmaster@frontdesk.test"])
        theirs = await send(cfg.port, message(message_id="<p3@example.com>"), ["postmaster@elsewhere.org"])
    assert bare[1][0] == 250 and bare[-1][0] == 250
    assert ours[1][0] == 250 and ours[-1][0] == 250
    assert theirs[1] == (550, b"5.7.1 Relaying denied")
    assert sorted(r.recipient for r in await stored(bus)) == ["Postmaster@frontdesk.test", "postmaster"]


async def test_large_text_mail_under_size_is_accepted_with_an_excerpt(
    bus: Bus, bus_config: BusConfig
) -> None:
    line = "The backup job log follows, every line of it matters to the tech.\n"
    body = line * (600 * 1024 // len(line))
    async with running(config(bus_config, publish_timeout=5.0)) as cfg:
        replies = await send(cfg.port, message(body=body))
    assert replies[-1][0] == 250
    (request,) = await stored(bus)
    limit = cfg.max_inline_text
    assert len(request.full_text) < limit + 100 and len(request.body) < limit + 100
    assert request.full_text.endswith("more characters in the stored text]")
    assert request.text_ref is not None
    stored_text = (await bus.get_object(request.text_ref)).decode()
    assert stored_text.replace("\r\n", "\n") == body.strip()


async def test_upstream_mode_trusts_only_our_relay_and_reads_the_real_from(
    bus: Bus, bus_config: BusConfig
) -> None:
    ours = f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=example.com".encode()
    theirs = b"Authentication-Results: mx.evil.example; dmarc=pass header.from=example.com"
    forged_from = b"From: jane@acme.example <m@evil.example>"
    async with running(config(bus_config)) as cfg:
        genuine = message(message_id="<u1@x>")
        assert ours in genuine
        elsewhere = message(message_id="<u2@x>").replace(ours, theirs)
        borrowed = message(message_id="<u3@x>").replace(
            b"From: Alice Client <alice@example.com>", forged_from
        )
        for raw in (genuine, elsewhere, borrowed):
            assert (await send(cfg.port, raw))[-1][0] == 250
    found = {r.thread.message_id: r for r in await stored(bus)}
    assert found["<u1@x>"].sender_auth.verdict == "authenticated"
    # Another server's Authentication-Results is dropped: it vouches for nothing.
    assert found["<u2@x>"].sender_auth.verdict == "unauthenticated"
    assert "no Authentication-Results from frontdesk.test" in found["<u2@x>"].sender_auth.reason
    # The display name is not the sender, and our relay's pass was for another domain.
    assert found["<u3@x>"].sender.email == "m@evil.example"
    assert found["<u3@x>"].sender_auth.verdict == "unauthenticated"


async def test_upstream_relays_limit_whose_headers_count(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, upstream_relays=("127.0.0.2/32",))) as cfg:

        def deliver(source: str, message_id: str) -> None:
            with smtplib.SMTP("127.0.0.1", cfg.port, timeout=10, source_address=(source, 0)) as client:
                client.sendmail("client@example.com", [SUPPORT], message(message_id=message_id))

        await asyncio.to_thread(deliver, "127.0.0.2", "<relay@x>")
        await asyncio.to_thread(deliver, "127.0.0.1", "<direct@x>")
    found = {r.thread.message_id: r.sender_auth for r in await stored(bus)}
    assert found["<relay@x>"].verdict == "authenticated"
    # The same header, sent straight to the intake rather than through the relay, vouches for nothing.
    assert found["<direct@x>"].verdict == "unauthenticated"
    assert found["<direct@x>"].reason == "127.0.0.1 is not an upstream relay"


def test_sender_auth_off_is_development_only() -> None:
    # Production also wants its bus user and a strong thread secret; this test is about sender auth.
    base = {
        "FRONTDESK_NATS_USER": "intake_email",
        "FRONTDESK_NATS_PASSWORD": "b" * 40,
        "FRONTDESK_THREAD_SECRET": "t" * 40,
    }
    env = {**base, "FRONTDESK_SMTP_SENDER_AUTH": "off"}
    with pytest.raises(ConfigError, match="FRONTDESK_SMTP_SENDER_AUTH=off"):
        load_config(env)
    assert load_config({**env, "FRONTDESK_ENV": "development"}).sender_auth == "off"
    with pytest.raises(ConfigError, match="FRONTDESK_SMTP_AUTHSERV_ID"):
        load_config({**base, "FRONTDESK_SMTP_SENDER_AUTH": "upstream"})
    assert load_config(base).sender_auth == "dmarc"
    with pytest.raises(ConfigError, match="FRONTDESK_SMTP_UPSTREAM_RELAYS"):
        load_config({**base, "FRONTDESK_SMTP_UPSTREAM_RELAYS": "10.0.0.0/8,mx.example"})
    check(
        load_config(
            {**base, "FRONTDESK_SMTP_SENDER_AUTH": "upstream", "FRONTDESK_SMTP_AUTHSERV_ID": "mx.test"}
        )
    )


def test_the_inline_raw_limit_stays_far_under_a_nats_message() -> None:
    env = {"FRONTDESK_ENV": "development"}
    assert load_config(env).max_inline_raw == 64 * 1024
    assert load_config({**env, "FRONTDESK_SMTP_MAX_INLINE_RAW": "0"}).max_inline_raw == 0  # every raw stored
    with pytest.raises(ConfigError, match="FRONTDESK_SMTP_MAX_INLINE_RAW"):
        load_config({**env, "FRONTDESK_SMTP_MAX_INLINE_RAW": str(MAX_INLINE_RAW + 1)})
