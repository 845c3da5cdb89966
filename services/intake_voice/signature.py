"""X-Twilio-Signature checks: which URL Twilio signed, and whether the signature matches it."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm


def signed_url(
    public_url: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    *,
    trust_forwarded: bool,
) -> str:
    """The URL Twilio called: our public base + the raw path and query.

    Forwarded host/proto are honoured only behind a proxy we trust: otherwise anyone could pick the
    URL the signature is checked against.
    """
    base = urlsplit(public_url)
    scheme, host = base.scheme, base.netloc
    if trust_forwarded:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
        host = headers.get("x-forwarded-host", host).split(",")[0].strip() or host
    prefix = base.path.rstrip("/")
    url = f"{scheme}://{host}{prefix}{path}"
    return f"{url}?{query}" if query else url


def valid(
    validator: RequestValidator,
    url: str,
    params: Sequence[tuple[str, str]] | str,
    signature: str,
    settings: str = "",
) -> bool:
    """Form params (a multi-dict as pairs) or a raw JSON body (with bodySHA256 in the URL).

    `settings` is X-Twilio-Webhooks-Signature-Settings; an algorithm we do not know fails closed.
    """
    if not signature:
        return False
    algorithm = get_signature_algorithm(settings)
    if isinstance(params, str):
        return bool(validator.validate(url, params, signature, algorithm))
    # Twilio signs every value of a repeated key, sorted; the SDK's MultiDict path does that.
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    multi = _MultiDict(grouped)
    # Usually Twilio signed exactly the URL we rebuilt: one HMAC, compared in constant time. The SDK's
    # validate always computes two (the URL with and without its default port); it runs only on a
    # mismatch, and says no to an algorithm it does not know.
    try:
        expected = validator.compute_signature(url, multi, algorithm)
    except ValueError:
        return bool(validator.validate(url, multi, signature, algorithm))
    if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return True
    return bool(validator.validate(url, multi, signature, algorithm))


class _MultiDict(dict[str, str]):
    """The SDK asks `getall` on multi-dicts (Django/Werkzeug shape); plain dicts lose repeats."""

    def __init__(self, grouped: dict[str, list[str]]) -> None:
        super().__init__({key: values[0] for key, values in grouped.items()})
        self._grouped = grouped

    def getall(self, key: str) -> list[str]:
        return self._grouped[key]
