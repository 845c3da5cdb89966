"""DMARC checked by the intake itself over DNS: SPF (pyspf), DKIM (dkimpy), the DMARC record (dnspython)."""

from __future__ import annotations

import dkim
import dns.exception
import dns.resolver
import spf

from services.contracts.requests import SenderAuth
from services.intake_email.authentication import (
    from_domain,
    headers,
    organizational_domain,
    pick_policy,
    unauthenticated,
    verdict,
)

# A message may carry many signatures; checking each costs a DNS round trip, so only the first few.
MAX_SIGNATURES = 5


def use_resolvers(servers: tuple[str, ...], timeout: float) -> None:
    """Send every DNS query of this process (ours, pyspf's, dkimpy's) to `servers` ("ip" or "ip:port").

    pyspf and dkimpy both ask dnspython's default resolver, so replacing it is the one place to point
    them elsewhere (a local validating resolver in production, a test server on loopback in tests).
    Empty keeps the system's resolv.conf.
    """
    if not servers:
        return
    resolver = dns.resolver.Resolver(configure=False)
    hosts, ports = [], set()
    for server in servers:
        host, colon, port = server.rpartition(":") if server.count(":") == 1 else ("", "", "")
        hosts.append(host if colon else server)
        ports.add(int(port) if colon else 53)
    if len(ports) != 1:
        raise ValueError("FRONTDESK_SMTP_DNS_SERVERS: every server must use the same port")
    resolver.nameservers = hosts
    resolver.port = ports.pop()
    resolver.lifetime = timeout
    dns.resolver.default_resolver = resolver


def _txt(name: str, timeout: float) -> list[str]:
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _spf(ip: str, helo: str, mail_from: str, timeout: float) -> tuple[str, str]:
    """The SPF result and the domain it is about (MAIL FROM's, or HELO's for a null sender)."""
    sender = mail_from.strip().strip("<>")
    domain = sender.rsplit("@", 1)[1].lower() if "@" in sender else helo.lower()
    if not domain:
        return "none", ""
    result, _ = spf.check2(
        i=ip, s=sender or f"postmaster@{domain}", h=helo or domain, timeout=timeout, querytime=timeout
    )
    return str(result), domain


def _dkim(raw: bytes, timeout: float) -> list[str]:
    """The d= domains of the signatures that verify."""
    checker = dkim.DKIM(raw, timeout=int(max(1, timeout)))
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    passed = []
    for index in range(min(count, MAX_SIGNATURES)):
        try:
            ok = checker.verify(idx=index)
        except dkim.DKIMException:
            ok = False
        if ok and checker.domain:
            passed.append(checker.domain.decode("ascii", "replace").lower())
    return passed


def check(raw: bytes, *, ip: str, helo: str, mail_from: str, timeout: float) -> SenderAuth:
    """Blocking (DNS): run it in a worker thread."""
    domain, why = from_domain(headers(raw))
    if domain is None:
        return unauthenticated("dmarc", why)
    try:
        spf_result, spf_domain = _spf(ip, helo, mail_from, timeout)
        dkim_domains = _dkim(raw, timeout)
        records = _txt(f"_dmarc.{domain}", timeout)
        org = organizational_domain(domain)
        if not records and org != domain:
            records = _txt(f"_dmarc.{org}", timeout)
    except dns.exception.DNSException as exc:
        # No answer is no proof: the mail is kept, as an unauthenticated sender's.
        return unauthenticated("dmarc", f"dns temperror ({type(exc).__name__})")
    return verdict(
        domain, pick_policy(records), spf=spf_result, spf_domain=spf_domain, dkim_domains=dkim_domains
    )
