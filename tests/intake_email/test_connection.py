"""connection.py: aiosmtpd finds its hooks without a full dir(); addresses read as aiosmtpd reads them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from services.common.bus import Bus
from services.common.clock import SystemClock
from services.intake_email.app import Intake
from services.intake_email.config import SmtpConfig
from services.intake_email.connection import Connection


def _session(intake: Intake, **options: object) -> Connection:
    return Connection(intake, hostname="frontdesk.test", loop=asyncio.new_event_loop(), **options)


def test_sessions_find_every_command_hook_and_mechanism_without_listing_every_attribute() -> None:
    cfg = SmtpConfig()
    intake = Intake(cfg, Bus(NatsClient(), cfg.bus), SystemClock())
    session = _session(intake)
    everything = object.__dir__(session)
    assert set(session._smtp_methods) == {n[5:] for n in everything if n.startswith("smtp_")}
    assert {"HELO", "EHLO", "MAIL", "RCPT", "DATA", "QUIT", "STARTTLS"} <= set(session._smtp_methods)
    assert set(session._auth_methods) == {n[5:] for n in everything if n.startswith("auth_")}
    assert set(session._handle_hooks) == {"MAIL", "RCPT", "DATA"}


def _outcome(read: Callable[[str], object], arg: str) -> object:
    try:
        return read(arg)
    except Exception as exc:  # aiosmtpd's parser raises on some inputs ("<"): ours must do the same
        return type(exc)


ADDRESS_TEXT = st.text(alphabet="<>@.-_+!#$%&'*=?^`{|}~ \t()\"[]\\:;,aZ09é\r\n", max_size=40)


@settings(max_examples=3000, deadline=None)
@given(ADDRESS_TEXT, st.sampled_from(["", " SIZE=100", "SIZE=1 BODY=8BITMIME", " (c) x", "\t x"]))
def test_envelope_addresses_read_as_aiosmtpd_reads_them(text: str, params: str) -> None:
    cfg = SmtpConfig()
    intake = Intake(cfg, Bus(NatsClient(), cfg.bus), SystemClock())
    for limit in (0, 3):
        session = _session(intake)
        session.local_part_limit = limit
        for arg in (text, f"<{text}>{params}", f" <a{text}@b.example>{params}", f"<{text}@x-y.example>"):
            ours = _outcome(session._getaddr, arg)
            assert ours == _outcome(functools.partial(SMTP._getaddr, session), arg), arg
    session = _session(intake)
    assert session._getaddr("<jane.doe+x@acme.example> SIZE=100") == ("jane.doe+x@acme.example", "SIZE=100")
