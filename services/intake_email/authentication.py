"""Pure sender-authentication rules: which From we check, trusted Authentication-Results, DMARC alignment."""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import authres
from publicsuffix2 import PublicSuffixList

from services.contracts.requests import SenderAuth
from services.intake_email.address import mailboxes

Mode = Literal["dmarc", "upstream", "off"]
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True)
class Headers:
    """The header fields sender authentication reads, as they arrived (RFC 2047 words still encoded)."""

    froms: tuple[str, ...]
    results: tuple[str, ...]  # Authentication-Results values, topmost (most recent hop) first


def headers(raw: bytes) -> Headers:
    # Only up to the first blank line (the header block ends there or before): the parser would split
    # the whole body into lines too, which cost more than reading the headers.
    # A bare-LF blank line only counts before the first CRLF one, so a CRLF mail (the usual) is not
    # scanned to its end for a "\n\n" it does not have.
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n", 0, crlf if crlf >= 0 else len(raw))
    ends = [at + 4 for at in (crlf, lf) if at >= 0]
    msg = _HEADERS.parsebytes(raw[: min(ends)] if ends else raw)
    values = [(k.lower(), str(v)) for k, v in msg.raw_items()]
    return Headers(
        froms=tuple(v for k, v in values if k == "from"),
        results=tuple(v for k, v in values if k == "authentication-results"),
    )


def from_domain(found: Headers) -> tuple[str | None, str]:
    """The one domain DMARC checks (RFC 7489 6.6.1), or None and why there is none."""
    if len(found.froms) != 1:
        return None, f"{len(found.froms)} From headers"
    boxes = mailboxes(found.froms[0])
    if len(boxes) != 1 or boxes[0].address is None:
        return None, "From does not name exactly one address"
    return boxes[0].address.rsplit("@", 1)[1].rstrip("."), ""


def from_relay(peer: str, relays: tuple[str, ...]) -> bool:
    """Whether the SMTP peer is one of the upstream relays (no list: every peer is)."""
    if not relays:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(relay, strict=False) for relay in relays)


def unauthenticated(method: str, reason: str) -> SenderAuth:
    return SenderAuth(verdict="unauthenticated", method=method, reason=reason)


def upstream(found: Headers, authserv_id: str) -> SenderAuth:
    """Trust only the topmost Authentication-Results our own relay wrote; ignore every other one.

    A compliant relay removes headers claiming its id before adding its own (RFC 8601 5), so the
    topmost one carrying that id is the relay's. Only its dmarc=pass for this very From domain counts.
    """
    domain, why = from_domain(found)
    if domain is None:
        return unauthenticated("upstream", why)
    ignored = 0
    for value in found.results:
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:
            ignored += 1
            continue
        if str(parsed.authserv_id).lower() != authserv_id.lower():
            ignored += 1
            continue
        for result in parsed.results:
            if str(result.method).lower() == "dmarc":
                return _relayed(authserv_id, domain, result)
        return unauthenticated("upstream", f"no dmarc result from {authserv_id}")
    why = f"no Authentication-Results from {authserv_id} ({ignored} others ignored)"
    return unauthenticated("upstream", why)


def _relayed(authserv_id: str, domain: str, result: Any) -> SenderAuth:
    """The relay's dmarc result counts only for this very From domain (header.from, when it names one)."""
    outcome = str(result.result).lower()
    checked = [str(p.value).lower().rstrip(".") for p in result.properties if str(p.name).lower() == "from"]
    if outcome != "pass":
        return unauthenticated("upstream", f"dmarc={outcome} by {authserv_id}")
    if any(d != domain for d in checked):
        return unauthenticated("upstream", f"{authserv_id} passed {checked[0]}, not the From domain {domain}")
    return SenderAuth(verdict="authenticated", method="upstream", reason=f"dmarc=pass by {authserv_id}")


# -- DMARC (RFC 7489) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The parts of a DMARC record that decide alignment and what the domain asks for."""

    p: str = "none"
    adkim: str = "r"
    aspf: str = "r"


def policy(txt: str) -> Policy | None:
    """A DMARC TXT record, or None when it is not one (RFC 7489 6.3: v=DMARC1 must come first)."""
    tags: dict[str, str] = {}
    for part in txt.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            tags.setdefault(key.strip().lower(), value.strip())
    if not txt.lstrip().lower().startswith("v") or tags.get("v", "").upper() != "DMARC1":
        return None
    adkim, aspf = tags.get("adkim", "r").lower(), tags.get("aspf", "r").lower()
    return Policy(
        p=tags.get("p", "none").lower(),
        adkim=adkim if adkim in ("r", "s") else "r",
        aspf=aspf if aspf in ("r", "s") else "r",
    )


def pick_policy(records: Iterable[str]) -> Policy | None:
    """RFC 7489 6.6.3: exactly one DMARC record applies; none or several mean no policy."""
    found = [p for p in (policy(r) for r in records) if p is not None]
    return found[0] if len(found) == 1 else None


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped with the package: no download at run time


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the public suffix plus one label (a TLD not on the list counts as a suffix)."""
    labels = domain.lower().rstrip(".").split(".")
    suffix = _suffixes().get_tld(".".join(labels), strict=True) or labels[-1]
    size = len(str(suffix).split(".")) + 1
    return ".".join(labels[-size:])


def aligned(identifier: str, from_dom: str, mode: str) -> bool:
    a, b = identifier.lower().rstrip("."), from_dom.lower().rstrip(".")
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def verdict(
    from_dom: str,
    record: Policy | None,
    *,
    spf: str,
    spf_domain: str,
    dkim_domains: Iterable[str],
) -> SenderAuth:
    """Authenticated when SPF or DKIM passed for a domain aligned with the From domain.

    That is DMARC's pass condition. It is what proves the address, so it applies even when the domain
    publishes no record (then alignment is relaxed); the record's p= is only reported.
    """
    rules = record or Policy()
    published = f"p={rules.p}" if record else "no DMARC record"
    dkim_ok = [d for d in dkim_domains if aligned(d, from_dom, rules.adkim)]
    if dkim_ok:
        return SenderAuth(
            verdict="authenticated", method="dmarc", reason=f"dmarc=pass (dkim d={dkim_ok[0]}; {published})"
        )
    if spf == "pass" and spf_domain and aligned(spf_domain, from_dom, rules.aspf):
        return SenderAuth(
            verdict="authenticated", method="dmarc", reason=f"dmarc=pass (spf {spf_domain}; {published})"
        )
    return unauthenticated("dmarc", f"dmarc=fail for {from_dom}: no aligned pass (spf={spf}; {published})")
