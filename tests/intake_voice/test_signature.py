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
