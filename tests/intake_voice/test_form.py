"""Webhook form checks: SIDs, bounded numbers, media, sender phones and caller labels."""

from __future__ import annotations

import pytest

from services.intake_voice import form


def test_sid_takes_the_first_present_name_and_names_the_field() -> None:
    assert form.sid({"SmsSid": "SM1"}, "MessageSid", "SmsSid") == "SM1"
    assert form.sid({"MessageSid": "MM9", "SmsSid": "SM1"}, "MessageSid", "SmsSid") == "MM9"
    with pytest.raises(form.Malformed, match=r"^MessageSid: required$") as missing:
        form.sid({}, "MessageSid", "SmsSid")
    assert missing.value.field == "MessageSid"
    for bad in ("x", "CA", "ca123", "CA12\r\nX: y", "CA" + "0" * 63, "CA1 2"):
        with pytest.raises(form.Malformed, match=r"^CallSid: not a Twilio SID$"):
            form.sid({"CallSid": bad}, "CallSid")
    assert form.sid({"CallSid": "CA" + "f" * 32}, "CallSid") == "CA" + "f" * 32
    assert form.optional_sid({}, "RecordingSid") is None
    assert form.optional_sid({"RecordingSid": ""}, "RecordingSid") is None


@pytest.mark.parametrize("value", ["abc", "-1", "3", "0", "1.0", " 1", "١", "9" * 13])
def test_bounded_int_refuses_anything_but_a_small_ascii_number(value: str) -> None:
    with pytest.raises(form.Malformed, match=r"^attempt: expected a whole number from 1 to 2$"):
        form.bounded_int({"attempt": value}, "attempt", 1, 2)


def test_bounded_int_reads_absent_empty_and_valid() -> None:
    assert form.bounded_int({}, "attempt", 1, 2) is None
    assert form.bounded_int({"attempt": ""}, "attempt", 1, 2) is None
    assert form.bounded_int({"attempt": "2"}, "attempt", 1, 2) == 2
    assert form.bounded_int({"ErrorCode": "30003"}, "ErrorCode", 0, 99_999) == 30003


def test_media_bounded_by_num_media_and_checked() -> None:
    params = {
        "NumMedia": "3",
        "MediaUrl0": "https://api.twilio.com/Media/ME1",
        "MediaContentType0": "image/jpeg",
        "MediaUrl2": "https://api.twilio.com/Media/ME3",
        "MediaUrl5": "https://api.twilio.com/Media/ME6",  # beyond NumMedia: ignored
    }
    assert form.media(params) == [
        ("https://api.twilio.com/Media/ME1", "image/jpeg"),
        ("https://api.twilio.com/Media/ME3", "application/octet-stream"),
    ]
    assert form.media({}) == []
    with pytest.raises(form.Malformed, match=r"^NumMedia: "):
        form.media({"NumMedia": "10000000000"})  # was range(10**10): a CPU-bound hang
    with pytest.raises(form.Malformed, match=r"^MediaUrl0: expected an http"):
        form.media({"NumMedia": "1", "MediaUrl0": "javascript:alert(1)"})
    with pytest.raises(form.Malformed, match=r"^MediaUrl0: "):
        form.media({"NumMedia": "1", "MediaUrl0": "https://x/" + "a" * form.MAX_URL})
    with pytest.raises(form.Malformed, match=r"^MediaContentType0: not a media type$"):
        form.media({"NumMedia": "1", "MediaUrl0": "https://x/y", "MediaContentType0": "a\r\nb"})


def test_sender_phone_only_e164() -> None:
    assert form.sender_phone({"From": "(312) 555-0123"}, "US") == "+13125550123"
    assert form.sender_phone({"From": "+447700900123"}, "US") == "+447700900123"
    for raw in ("%2", "anonymous", "VERIFY", "12", "+1" + "9" * 300):
        with pytest.raises(form.Malformed, match=r"^From: not a phone number$"):
            form.sender_phone({"From": raw}, "US")
    with pytest.raises(form.Malformed, match=r"^From: required$"):
        form.sender_phone({}, "US")


def test_caller_label_is_short_and_printable_or_nothing() -> None:
    assert form.caller_label(" anonymous ") == "anonymous"
    assert form.caller_label("a" * (form.MAX_LABEL + 1)) == ""
    assert form.caller_label("x\x1b[2Jy") == ""
