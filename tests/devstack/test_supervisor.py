"""The local stack's wiring: the parts find each other at the ports chosen."""

from __future__ import annotations

from services.devstack.supervisor import DEV_DEFAULTS, wired


def test_the_defaults_wire_the_parts_at_their_default_ports() -> None:
    env = wired(dict(DEV_DEFAULTS))
    assert env["FRONTDESK_TWILIO_API_BASE"] == "http://127.0.0.1:8025"
    assert env["FRONTDESK_VOICE_PUBLIC_URL"] == "http://127.0.0.1:8080"
    assert env["FRONTDESK_SANDBOX_WEBHOOK_BASE"] == "http://127.0.0.1:8080"
    assert env["FRONTDESK_NOTIFIER_STATUS_CALLBACK"] == "http://127.0.0.1:8080/twilio/sms/status"
    assert env["FRONTDESK_NOTIFIER_RELAY_PORT"] == "2526"


def test_a_moved_port_moves_what_points_at_it() -> None:
    moved = {
        "FRONTDESK_SANDBOX_PORT": "18025",
        "FRONTDESK_SANDBOX_SMTP_PORT": "12526",
        "FRONTDESK_VOICE_PORT": "18080",
    }
    env = wired({**DEV_DEFAULTS, **moved})
    assert env["FRONTDESK_TWILIO_API_BASE"] == "http://127.0.0.1:18025"
    assert env["FRONTDESK_VOICE_PUBLIC_URL"] == "http://127.0.0.1:18080"
    assert env["FRONTDESK_SANDBOX_WEBHOOK_BASE"] == "http://127.0.0.1:18080"
    assert env["FRONTDESK_NOTIFIER_STATUS_CALLBACK"] == "http://127.0.0.1:18080/twilio/sms/status"
    assert env["FRONTDESK_NOTIFIER_RELAY_PORT"] == "12526"


def test_an_address_set_by_hand_wins() -> None:
    public = "https://desk.example.com"
    env = wired({**DEV_DEFAULTS, "FRONTDESK_VOICE_PORT": "18080", "FRONTDESK_VOICE_PUBLIC_URL": public})
    assert env["FRONTDESK_VOICE_PUBLIC_URL"] == public
    assert env["FRONTDESK_SANDBOX_WEBHOOK_BASE"] == "http://127.0.0.1:18080"
