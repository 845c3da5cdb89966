"""TwiML parsing: verbs, attributes, text and refusal of malformed documents."""

from __future__ import annotations

import pytest

from services.sandbox.twiml import TwimlError, parse


def test_top_level_verbs_keep_attributes_and_text() -> None:
    verbs = parse(
        '<?xml version="1.0"?><Response><Gather action="/menu" numDigits="1"><Say>Press 1</Say></Gather>'
        "<Redirect>/twilio/voice</Redirect><Hangup/></Response>"
    )
    assert [verb.name for verb in verbs] == ["Gather", "Redirect", "Hangup"]
    assert verbs[0].attrs == {"action": "/menu", "numDigits": "1"}
    assert verbs[0].text == "Press 1"
    assert verbs[1].text == "/twilio/voice"


@pytest.mark.parametrize("document", ["not xml", "<Html><Say>x</Say></Html>"])
def test_malformed_twiml_is_refused(document: str) -> None:
    with pytest.raises(TwimlError):
        parse(document)
