"""The SMTP intake end to end: a real SMTP socket, a real nats-server, 250 only after JetStream acked."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from services.common.bus import Bus
from services.common.config import BusConfig
from services.common.natsserver import NatsServer
from services.contracts.requests import attachment_bytes, held_in_request
from services.contracts.threading import subject_token
from tests.intake_email.stack import SECRET, SUPPORT, config, message, running, send, stored


@pytest.mark.parametrize("max_inline_raw", [64 * 1024, 0])
async def test_accepted_mail_is_published_once_and_raw_is_kept(
    bus: Bus, bus_config: BusConfig, max_inline_raw: int
) -> None:
    raw = message(subject="Server down!", body="Our server is offline.\n\nOn Mon, Bob wrote:\n> old text\n")
    async with running(config(bus_config, max_inline_raw=max_inline_raw)) as cfg:
        first = await send(cfg.port, raw)
        again = await send(cfg.port, raw)
    assert first[-1][0] == 250 and again[-1][0] == 250
    requests = await stored(bus)
    assert len(requests) == 1
    req = requests[0]
    assert req.id.startswith("em-") and first[-1][1].decode().endswith(req.id)
    assert req.sender.email == "alice@example.com" and req.sender.name == "Alice Client"
    assert req.recipient == SUPPORT
    assert req.priority_hint == "emergency" and "keyword:down" in req.hints
    assert req.body == "Our server is offline."
    assert "old text" in req.full_text
    # The original is the bytes as received on the wire (CRLF line endings): inside the request when it
    # is small, else stored as an object the request names (never both).
    wire = raw.replace(b"\n", b"\r\n")
    if max_inline_raw:
        assert (req.raw, req.raw_ref) == (wire, None)
    else:
        assert req.raw is None and req.raw_ref is not None
        assert await bus.get_object(req.raw_ref) == wire
    assert req.nature == "request"


async def test_a_mail_just_over_the_inline_limit_is_stored_as_an_object(
    bus: Bus, bus_config: BusConfig
) -> None:
    raw = message(message_id="<edge@example.com>").replace(b"\n", b"\r\n")
    async with running(config(bus_config, max_inline_raw=len(raw) - 1)) as cfg:
        assert (await send(cfg.port, raw))[-1][0] == 250
        assert (await send(cfg.port, raw.replace(b"edge@", b"edg@")))[-1][0] == 250
    over, at_limit = await stored(bus)
    assert over.raw is None and await bus.get_object(over.raw_ref or "") == raw
    # One byte shorter (the Message-ID): exactly at the limit, so it travels in the request.
    assert at_limit.raw_ref is None and at_limit.raw == raw.replace(b"edge@", b"edg@")


async def test_a_small_mail_whose_request_would_be_too_big_stores_its_raw(
    bus: Bus, bus_config: BusConfig
) -> None:
    # 60 KB of control characters: a small raw, but JSON writes each as \u00XX, six bytes, in both the body
    # and the full text, which would make the request bigger than REQUEST_BUDGET with the raw inside.
    raw = message(message_id="<escaped@example.com>", body="\x01" * 60_000)
    async with running(config(bus_config)) as cfg:
        assert (await send(cfg.port, raw))[-1][0] == 250
    (req,) = await stored(bus)
    assert req.raw is None and await bus.get_object(req.raw_ref or "") == raw.replace(b"\n", b"\r\n")
    assert req.body.count("\x01") > 50_000


@pytest.mark.parametrize("max_inline_raw", [64 * 1024, 0])
async def test_attachments_are_stored_and_listed(
    bus: Bus, bus_config: BusConfig, max_inline_raw: int
) -> None:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = SUPPORT
    msg["Subject"] = "Photo of the error"
    msg["Message-ID"] = "<att@example.com>"
    msg.set_content("See the photo.")
    msg.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="screen shot.png")
    async with running(config(bus_config, max_inline_raw=max_inline_raw)) as cfg:
        replies = await send(cfg.port, msg.as_bytes())
    assert replies[-1][0] == 250
    (req,) = await stored(bus)
    (att,) = req.attachments
    assert (att.filename, att.content_type, att.size, att.inline) == (
        "screen shot.png",
        "image/png",
        9,
        False,
    )
    # The attachment is a span of the raw original: its bytes travel or are stored once.
    assert att.transfer_encoding == "base64"
    if max_inline_raw:
        assert att.object_name == "" and held_in_request(req, att) == req.raw
        holder = req.raw or b""
    else:
        assert att.object_name == req.raw_ref and held_in_request(req, att) is None
        holder = await bus.get_object(att.object_name)
    assert attachment_bytes(att, holder) == b"\x89PNG fake"


async def test_nats_down_gives_451_then_resend_is_accepted_once(
    bus: Bus, bus_config: BusConfig, nats_server: NatsServer
) -> None:
    raw = message(message_id="<outage@example.com>")
    async with running(config(bus_config)) as cfg:
        nats_server.stop()
        down = await send(cfg.port, raw)
        assert down[-1] == (451, b"4.3.0 Temporarily unable to accept, try again")
        nats_server.start()
        code = 0
        for _ in range(40):  # the client retries, as a real MTA would
            code = (await send(cfg.port, raw))[-1][0]
            if code == 250:
                break
            await asyncio.sleep(0.25)
        assert code == 250
        assert (await send(cfg.port, raw))[-1][0] == 250
    for _ in range(40):
        if bus.connected:
            break
        await asyncio.sleep(0.25)
    requests = await stored(bus)
    assert [r.thread.message_id for r in requests] == ["<outage@example.com>"]


async def test_relay_denied_and_too_many_recipients(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, max_recipients=2, support_domains=("help.test",))) as cfg:
        replies = await send(
            cfg.port, message(), ["someone@elsewhere.org", "a@help.test", SUPPORT, "b@help.test"]
        )
    assert replies[1] == (550, b"5.7.1 Relaying denied")
    assert replies[2][0] == 250 and replies[3][0] == 250
    assert replies[4] == (452, b"4.5.3 Too many recipients")
    assert replies[5][0] == 250


async def test_oversize_gets_552_and_size_is_advertised(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, max_size=2000)) as cfg:

        def ehlo_size() -> str:
            with smtplib.SMTP("127.0.0.1", cfg.port, timeout=10) as client:
                client.ehlo()
                return client.esmtp_features.get("size", "")

        assert await asyncio.to_thread(ehlo_size) == "2000"
        replies = await send(cfg.port, message(body=("x" * 70 + "\n") * 80))
    assert replies[-1] == (552, b"5.3.4 Message too big")
    assert await stored(bus) == []


async def test_session_limit_and_rate_limit(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config, max_sessions=1, rate_per_minute=1)) as cfg:

        def second_while_first_open() -> None:
            with smtplib.SMTP("127.0.0.1", cfg.port, timeout=10) as first:
                first.ehlo()
                with pytest.raises(smtplib.SMTPConnectError) as refused:
                    smtplib.SMTP("127.0.0.1", cfg.port, timeout=10)
                assert refused.value.smtp_code == 421

        await asyncio.to_thread(second_while_first_open)
        first = await send(cfg.port, message(message_id="<r1@example.com>"))
        second = await send(cfg.port, message(message_id="<r2@example.com>"))
    assert first[-1][0] == 250
    assert second[0] == (450, b"4.7.1 Too many messages, slow down")


async def test_auto_reply_bounce_and_forged_token(bus: Bus, bus_config: BusConfig) -> None:
    signed = subject_token("SR-1042", SECRET.encode())
    async with running(config(bus_config)) as cfg:
        await send(
            cfg.port,
            message(subject="Out of Office: back Monday", message_id="<o@x>", Auto_Submitted="auto-replied"),
        )
        await send(cfg.port, message(subject="Undelivered Mail Returned to Sender", message_id="<b@x>"))
        await send(cfg.port, message(subject="Re: [SR-1042-deadbeef] printer", message_id="<f@x>"))
        await send(cfg.port, message(subject=f"Re: {signed} printer", message_id="<g@x>"))
        await send(cfg.port, message(subject="Your ticket", message_id="<a@x>", Precedence="bulk"))
    by_id = {r.thread.message_id: r for r in await stored(bus)}
    assert by_id["<o@x>"].nature == "out_of_office"
    assert by_id["<b@x>"].nature == "bounce"
    assert by_id["<a@x>"].nature == "auto_reply"
    forged = by_id["<f@x>"].thread
    # A bad signature counts as no token: nothing to thread by, not even as a bare one.
    assert (forged.ticket_token, forged.token_signed) == (None, False)
    assert "token:forged" in by_id["<f@x>"].hints
    assert by_id["<g@x>"].thread.token_signed is True


async def test_starttls_when_cert_and_key_are_set(bus: Bus, bus_config: BusConfig, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    async with running(config(bus_config, tls_cert=str(cert), tls_key=str(key))) as cfg:

        def over_tls() -> tuple[int, bytes]:
            context = ssl.create_default_context(cafile=str(cert))
            context.check_hostname = False
            with smtplib.SMTP("127.0.0.1", cfg.port, timeout=10) as client:
                client.ehlo()
                assert client.has_extn("starttls")
                client.starttls(context=context)
                client.ehlo()
                client.mail("client@example.com")
                client.rcpt(SUPPORT)
                return client.data(message(message_id="<tls@example.com>").replace(b"\n", b"\r\n"))

        code, _ = await asyncio.to_thread(over_tls)
    assert code == 250
    assert [r.thread.message_id for r in await stored(bus)] == ["<tls@example.com>"]


async def test_metrics_count_received_and_refused(bus: Bus, bus_config: BusConfig) -> None:
    async with running(config(bus_config)) as cfg:
        await send(cfg.port, message(), ["someone@elsewhere.org", SUPPORT])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cfg.http_port}") as http:
            metrics = (await http.get("/metrics")).text
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).json()["accepted"] == 1
    assert 'frontdesk_requests_received_total{channel="email"} 1.0' in metrics
    assert 'frontdesk_messages_refused_total{reason="550 5.7.1"} 1.0' in metrics
