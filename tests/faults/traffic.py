"""The faults' traffic: numbered emails and signed texts, the services' settings, the ticket count."""

from __future__ import annotations

import collections
import contextlib
import os
import re
from email.message import EmailMessage
from pathlib import Path

import msgspec
from twilio.request_validator import RequestValidator

from services.common.bus import Bus
from services.common.kvview import snapshot
from services.common.natsserver import free_port
from services.common.process import ROOT
from services.contracts import Ticket
from services.contracts import subjects as s
from tests.intake_email.senders import AUTHSERV_ID, client_email

TOKEN = "faults-token"
MARK = re.compile(r"fault-(?:em|sms)-\d{4}")


def email(i: int) -> EmailMessage:
    return client_email("fault-em", i)


def stack_env(tmp_path: Path, *, smtp_port: int, voice_port: int, router_http: int) -> dict[str, str]:
    """Settings of router, intake_email and intake_voice run as processes (add each one's bus user)."""
    return {
        **os.environ,
        "FRONTDESK_ENV": "development",
        "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
        "FRONTDESK_THREAD_SECRET": "faults-secret",
        "FRONTDESK_TWILIO_AUTH_TOKEN": TOKEN,
        "FRONTDESK_SMTP_PORT": str(smtp_port),
        "FRONTDESK_SMTP_HTTP_PORT": str(free_port()),
        "FRONTDESK_SMTP_RATE_PER_MINUTE": "1000000",
        "FRONTDESK_SMTP_MAX_SESSIONS_PER_IP": "1000",
        "FRONTDESK_SMTP_SENDER_AUTH": "upstream",
        "FRONTDESK_SMTP_AUTHSERV_ID": AUTHSERV_ID,
        "FRONTDESK_SMTP_PUBLISH_TIMEOUT": "2",
        "FRONTDESK_ROUTER_HTTP_PORT": str(router_http),
        "FRONTDESK_VOICE_PORT": str(voice_port),
        "FRONTDESK_VOICE_HTTP_PORT": str(free_port()),  # intake_voice: /metrics and /readyz
        "FRONTDESK_VOICE_PUBLIC_URL": f"http://127.0.0.1:{voice_port}",
        "FRONTDESK_VOICE_SPOOL_DIR": str(tmp_path / "spool"),
    }


def signed_sms(validator: RequestValidator, voice: str, j: int) -> tuple[str, dict[str, str], str]:
    """(marker, form, X-Twilio-Signature) of inbound SMS number `j`."""
    marker = f"fault-sms-{j:04d}"
    params = {
        "MessageSid": f"SM{j:032x}", "AccountSid": "AC" + "0" * 32, "From": "+13125550999",
        "To": "+13125550100", "Body": f"{marker} printer down", "NumMedia": "0",
    }  # fmt: skip
    return marker, params, validator.compute_signature(f"{voice}/twilio/sms", params)


async def count_tickets(bus: Bus) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with contextlib.suppress(Exception):
        # A watch, not kv.keys(): polled for minutes, keys() would fill the stream's consumer limit.
        for ticket in (await snapshot(bus, s.KV_TICKETS, ">", msgspec.json.Decoder(Ticket).decode)).values():
            found = MARK.search(f"{ticket.subject} {ticket.summary}")
            if found:
                counts[found.group()] += 1
    return counts
