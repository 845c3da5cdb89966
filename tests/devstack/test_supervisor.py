"""The local stack's wiring: the parts find each other at the ports chosen."""

from __future__ import annotations

import pytest

from services.devstack.supervisor import DEV_DEFAULTS, wired


@pytest.mark.parametrize(
    ("sandbox", "sink", "voice"),
    [
        pytest.param("8025", "2526", "8080", id="the default ports"),
        pytest.param("18025", "12526", "18080", id="moved ports"),
    ],
)
def test_the_parts_are_wired_at_the_ports_chosen(sandbox: str, sink: str, voice: str) -> None:
    ports = {
        "FRONTDESK_SANDBOX_PORT": sandbox,
        "FRONTDESK_SANDBOX_SMTP_PORT": sink,
        "FRONTDESK_VOICE_PORT": voice,
    }
    env = wired({**DEV_DEFAULTS, **ports})
    assert env["FRONTDESK_TWILIO_API_BASE"] == f"http://127.0.0.1:{sandbox}"
    assert env["FRONTDESK_VOICE_PUBLIC_URL"] == f"http://127.0.0.1:{voice}"
    assert env["FRONTDESK_SANDBOX_WEBHOOK_BASE"] == f"http://127.0.0.1:{voice}"
    assert env["FRONTDESK_NOTIFIER_STATUS_CALLBACK"] == f"http://127.0.0.1:{voice}/twilio/sms/status"
    assert env["FRONTDESK_NOTIFIER_RELAY_PORT"] == sink


def test_the_defaults_are_the_documented_ports() -> None:
    assert (DEV_DEFAULTS["FRONTDESK_SANDBOX_PORT"], DEV_DEFAULTS["FRONTDESK_VOICE_PORT"]) == ("8025", "8080")
    assert DEV_DEFAULTS["FRONTDESK_SANDBOX_SMTP_PORT"] == "2526"


def test_an_address_set_by_hand_wins() -> None:
    public = "https://desk.example.com"
    env = wired({**DEV_DEFAULTS, "FRONTDESK_VOICE_PORT": "18080", "FRONTDESK_VOICE_PUBLIC_URL": public})
    assert env["FRONTDESK_VOICE_PUBLIC_URL"] == public
    assert env["FRONTDESK_SANDBOX_WEBHOOK_BASE"] == "http://127.0.0.1:18080"
