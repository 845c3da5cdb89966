"""DMARC checked by the intake over DNS: SPF, DKIM and the record, served by a DNS server on loopback."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import dns.resolver
import pytest
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from services.common.bus import Bus
from services.common.config import BusConfig
from services.intake_email import dmarc
from tests.intake_email.stack import config, running, send, stored

SELECTOR = "sel"


class Zone(BaseResolver):  # type: ignore[misc]
    """TXT records by name; unknown names are NXDOMAIN, known names without the type answer empty."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.asked: list[str] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.asked.append(name)
        if name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in self.records[name]:
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A fresh RSA key (PKCS#1 PEM, as dkimpy signs with) and its public half for the DNS record."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key = tmp_path_factory.mktemp("dkim") / "key.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "1024"], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return Path(key).read_bytes(), base64.b64encode(public).decode()


@pytest.fixture
def zone(dkim_key: tuple[bytes, str]) -> Iterator[tuple[Zone, int]]:
    records = {
        "acme.example": ["v=spf1 ip4:127.0.0.1 -all"],
        "evil.example": ["v=spf1 ip4:127.0.0.0/8 -all"],
        "_dmarc.acme.example": ["v=DMARC1; p=reject"],
        f"{SELECTOR}._domainkey.acme.example": [f"v=DKIM1; k=rsa; p={dkim_key[1]}"],
    }
    resolver = Zone(records)
    server = DNSServer(resolver, address="127.0.0.1", port=0, logger=DNSLogger("-request,-reply,-truncated"))
    port = server.server.server_address[1]
    previous = dns.resolver.default_resolver
    server.start_thread()
    dmarc.use_resolvers((f"127.0.0.1:{port}",), 2.0)
    try:
        yield resolver, port
    finally:
        dns.resolver.default_resolver = previous
        server.stop()


def mail(sender: str = "Jane Roe <jane@acme.example>", body: str = "Server down, please call.") -> bytes:
    lines = [
        f"From: {sender}",
        "To: support@frontdesk.test",
        "Subject: urgent",
        "Message-ID: <d1@acme.example>",
    ]
    return ("\r\n".join([*lines, "", body, ""])).encode()


def signed(raw: bytes, key: bytes, domain: str = "acme.example") -> bytes:
    signature = dkim.sign(raw, SELECTOR.encode(), domain.encode(), key, include_headers=[b"from", b"subject"])
    return bytes(signature) + raw


def check(raw: bytes, mail_from: str, ip: str = "127.0.0.1") -> tuple[str, str]:
    auth = dmarc.check(raw, ip=ip, helo="mx.example", mail_from=mail_from, timeout=2.0)
    assert auth.method == "dmarc"
    return auth.verdict, auth.reason


def test_aligned_dkim_signature_authenticates_even_through_a_foreign_envelope(
    zone: tuple[Zone, int], dkim_key: tuple[bytes, str]
) -> None:
    verdict, reason = check(signed(mail(), dkim_key[0]), "bounces@evil.example")
    assert verdict == "authenticated" and reason == "dmarc=pass (dkim d=acme.example; p=reject)"
    assert "_dmarc.acme.example" in zone[0].asked and f"{SELECTOR}._domainkey.acme.example" in zone[0].asked


def test_altered_signed_mail_is_not_authenticated(
    zone: tuple[Zone, int], dkim_key: tuple[bytes, str]
) -> None:
    tampered = signed(mail(), dkim_key[0]).replace(b"please call", b"wire money")
    assert check(tampered, "bounces@evil.example")[0] == "unauthenticated"


def test_aligned_spf_pass_authenticates_and_a_foreign_one_does_not(zone: tuple[Zone, int]) -> None:
    assert check(mail(), "jane@acme.example") == ("authenticated", "dmarc=pass (spf acme.example; p=reject)")
    # The spoof of Found 1: SPF passes, but for evil.example, which is not the From domain.
    verdict, reason = check(mail(), "mallory@evil.example")
    assert verdict == "unauthenticated" and reason.startswith("dmarc=fail for acme.example")
    # From an address acme.example's SPF does not list.
    assert check(mail(), "jane@acme.example", ip="127.0.0.9")[0] == "unauthenticated"


def test_display_name_cannot_borrow_a_domain(zone: tuple[Zone, int], dkim_key: tuple[bytes, str]) -> None:
    raw = mail(sender="jane@acme.example <mallory@evil.example>")
    # SPF passes for evil.example, the real From: authenticated, but as mallory, never as jane.
    assert check(raw, "mallory@evil.example")[1] == "dmarc=pass (spf evil.example; no DMARC record)"
    assert check(signed(raw, dkim_key[0]), "x@other.example")[0] == "unauthenticated"


def test_no_dns_answer_is_no_proof(dkim_key: tuple[bytes, str]) -> None:
    previous = dns.resolver.default_resolver
    dmarc.use_resolvers(("127.0.0.1:9",), 0.5)  # nothing listens on the discard port
    try:
        raw = signed(mail(), dkim_key[0])
        auth = dmarc.check(raw, ip="127.0.0.1", helo="mx.example", mail_from="jane@acme.example", timeout=0.3)
        verdict, reason = auth.verdict, auth.reason
    finally:
        dns.resolver.default_resolver = previous
    assert verdict == "unauthenticated" and "temperror" in reason


async def test_smtp_intake_in_dmarc_mode_marks_each_request(
    bus: Bus, bus_config: BusConfig, zone: tuple[Zone, int], dkim_key: tuple[bytes, str]
) -> None:
    port = zone[1]
    cfg = config(bus_config, sender_auth="dmarc", dns_servers=(f"127.0.0.1:{port}",), dns_timeout=2.0)
    genuine = signed(mail(), dkim_key[0])
    spoof = mail(body="Spoofed").replace(b"<d1@", b"<d2@")
    async with running(cfg):
        assert (await send(cfg.port, genuine))[-1][0] == 250
        assert (await send(cfg.port, spoof))[-1][0] == 250  # kept, never refused
    by_body = {r.body: r.sender_auth for r in await stored(bus)}
    assert by_body["Server down, please call."].verdict == "authenticated"
    assert by_body["Spoofed"].verdict == "unauthenticated"
    assert by_body["Spoofed"].reason.startswith("dmarc=fail for acme.example")
