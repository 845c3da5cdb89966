"""X-Twilio-Signature: the twilio-python known-answer vectors and the URL we check against."""

from __future__ import annotations

import json

from twilio.request_validator import RequestValidator

from services.intake_voice.signature import signed_url, valid
from tests.conftest import corpus


def test_request_validator_vectors() -> None:
    data = json.loads((corpus("twilio") / "request-validator-vectors.json").read_text())
    validator = RequestValidator(data["auth_token"])
    first = data["cases"][0]["params"]
    checked = 0
    for case in data["cases"]:
        params: list[tuple[str, str]] | str
        if "body" in case:
            params = case["body"]
        elif "params_list" in case:
            params = [(k, v) for k, v in case["params_list"]]
        else:
            raw = first if case["params"] == "same as case 1" else case["params"]
            params = list(raw.items())
        assert valid(validator, case["url"], params, case["signature"]) is case["valid"], case["name"]
        # A flipped character must fail: the check is not "anything non-empty passes".
        forged = case["signature"][:-2] + ("A" if case["signature"][-2] != "A" else "B") + "="
        assert not valid(validator, case["url"], params, forged), case["name"]
        checked += 1
    assert checked == len(data["cases"]) == 7


def test_missing_signature_and_unknown_algorithm_fail_closed() -> None:
    validator = RequestValidator("12345")
    url = "https://voice.example.com/twilio/voice"
    sig = validator.compute_signature(url, {"CallSid": "CA1"})
    assert valid(validator, url, [("CallSid", "CA1")], sig)
    assert not valid(validator, url, [("CallSid", "CA1")], "")
    assert not valid(validator, url, [("CallSid", "CA1")], sig, "algorithm=HMAC_MD5")


def test_signed_url_uses_public_url_unless_forwarding_is_trusted() -> None:
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "evil.example"}
    base = "https://voice.example.com/"
    assert (
        signed_url(base, "/twilio/voice/menu", "attempt=2", headers, trust_forwarded=False)
        == "https://voice.example.com/twilio/voice/menu?attempt=2"
    )
    assert (
        signed_url("http://10.0.0.5:8080", "/twilio/sms", "", headers, trust_forwarded=True)
        == "https://evil.example/twilio/sms"
    )


def test_signature_over_the_url_with_or_without_its_default_port_is_accepted() -> None:
    # One HMAC decides the usual case; Twilio sometimes signs the URL with :443 (or without it), and the
    # SDK's two-variant check still accepts that, while a forgery fails both ways.
    validator = RequestValidator("12345")
    params = [("CallSid", "CA1"), ("Digits", "1"), ("Digits", "2")]
    grouped = {"CallSid": "CA1", "Digits": "1"}
    bare, ported = "https://voice.example.com/twilio/voice", "https://voice.example.com:443/twilio/voice"
    for signed_as, checked_as in ((bare, bare), (ported, bare), (bare, ported), (ported, ported)):
        signature = validator.compute_signature(signed_as, _Multi(params))
        assert valid(validator, checked_as, params, signature), (signed_as, checked_as)
        assert not valid(validator, checked_as, params, validator.compute_signature(signed_as, grouped))
        assert not valid(validator, checked_as, params, "é" + signature[1:])  # non-ASCII: refused, no crash


class _Multi(dict[str, str]):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs

    def getall(self, key: str) -> list[str]:
        return [value for name, value in self.pairs if name == key]
