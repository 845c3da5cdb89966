"""The authenticated bus against a real nats-server: anonymous refused, each user held to its own subjects."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NoServersError

from services.common import natsauth
from services.common.bus import Bus, PublishFailed
from services.common.config import BusConfig, ConfigError, Secret, load_bus
from services.contracts import subjects as s
from tests.conftest import AuthServer


@contextlib.asynccontextmanager
async def connected(config: BusConfig) -> AsyncIterator[Bus]:
    """A service user's own connection, closed after the block."""
    bus = await Bus.connect(config, "probe")
    try:
        yield bus
    finally:
        await bus.close()


async def refused(bus: Bus, subjects: Iterable[str]) -> None:
    """Every publish to `subjects` is refused: the user may not publish there."""
    for subject in subjects:
        with pytest.raises(PublishFailed):
            await bus.publish_bytes(subject, b"{}", msg_id=f"probe-{subject}", timeout=0.5)


async def test_an_anonymous_connection_is_refused(nats_server: AuthServer) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(nats_server.url, allow_reconnect=False, connect_timeout=2)


async def test_a_wrong_password_is_refused(nats_server: AuthServer) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(
            nats_server.url, user="notifier", password="guess", allow_reconnect=False, connect_timeout=2
        )


async def test_intake_email_cannot_order_an_sms(
    bus: Bus, service_bus_config: Callable[[str], BusConfig]
) -> None:
    """The finding: an anonymous client put a SendSms on fd.outbox.sms and the notifier texted a stranger."""
    async with connected(service_bus_config("intake_email")) as intake:
        await refused(intake, (s.OUTBOX_SMS, s.notify_subject("dispatch_ticket"), s.timeline_subject("acme")))
        # Its own subject still works.
        ack = await intake.publish_bytes(s.request_subject("email"), b"{}", msg_id="own")
        assert ack.stream == s.STREAM_REQUESTS
    for stream in (s.STREAM_OUTBOX, s.STREAM_NOTIFY, s.STREAM_TIMELINE):
        info = await bus.js.stream_info(stream)
        assert info.state.messages == 0, stream


async def test_intake_voice_publishes_replies_but_not_commands(
    bus: Bus, service_bus_config: Callable[[str], BusConfig]
) -> None:
    async with connected(service_bus_config("intake_voice")) as voice:
        await voice.publish_bytes(s.TECH_REPLIED, b"{}", msg_id="r1")
        await voice.publish_bytes(s.request_subject("sms"), b"{}", msg_id="r2")
        await refused(voice, (s.OUTBOX_EMAIL, s.request_subject("email"), s.dlq_subject("x")))
    assert (await bus.js.stream_info(s.STREAM_OUTBOX)).state.messages == 0


async def test_console_sends_desk_commands_only(
    bus: Bus, service_bus_config: Callable[[str], BusConfig]
) -> None:
    async with connected(service_bus_config("console")) as console:
        await console.publish_bytes(s.notify_subject("desk") + ".assign", b"{}", msg_id="d1")
        await refused(console, (s.notify_subject("dispatch_ticket"), s.OUTBOX_SMS, f"$KV.{s.KV_TICKETS}.x"))
        # Read-only on the tickets bucket: a get works, a put is refused.
        assert await console.kv_get(s.KV_TICKETS, "none") == (None, 0)
    assert (await bus.js.stream_info(s.STREAM_NOTIFY)).state.messages == 1


async def test_a_service_cannot_read_another_users_replies(
    bus: Bus, service_bus_config: Callable[[str], BusConfig]
) -> None:
    """Replies to the router's requests go to _INBOX_router: another user cannot listen there."""
    spy = await nats.connect(
        bus.cfg.url[0], user="intake_email", password=service_bus_config("intake_email").password.reveal()
    )
    try:
        received: list[bytes] = []

        async def keep(msg: Msg) -> None:
            received.append(msg.data)

        await spy.subscribe(f"{natsauth.inbox_prefix('router')}.>", cb=keep)
        await spy.subscribe(s.OUTBOX_ALL, cb=keep)
        await spy.flush()
        await bus.nc.publish(f"{natsauth.inbox_prefix('router')}.abc", b"secret")
        await bus.nc.publish(s.OUTBOX_SMS, b"{}")
        await bus.nc.flush()
        await asyncio.sleep(0.3)
        assert received == []
    finally:
        await spy.close()


async def test_a_service_waits_for_ops_to_create_the_topology(
    nats_server: AuthServer, service_bus_config: Callable[[str], BusConfig]
) -> None:
    router = await Bus.connect(service_bus_config("router"), "router")
    ops = await Bus.connect(nats_server.config_for(), "ops")
    try:
        waiting = asyncio.create_task(router.ensure_topology())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # a service user may not create streams: it waits
        await ops.ensure_topology()
        await asyncio.wait_for(waiting, 10)
        stop = asyncio.Event()
        stop.set()
        await router.ensure_topology(stop=stop)  # present now: returns at once
    finally:
        await router.close()
        await ops.close()


def test_intakes_may_never_publish_commands() -> None:
    grants = natsauth.permissions()
    for user in ("intake_email", "intake_voice"):
        for subject in grants[user].publish:
            assert not subject.startswith(("fd.outbox", "fd.notify", ">", "fd.>")), (user, subject)
    for user in natsauth.SERVICE_USERS:
        assert grants[user].subscribe == (f"_INBOX_{user}.>",)
        assert not natsauth.manages_topology(user)
    assert natsauth.manages_topology(natsauth.OPS)
    assert natsauth.visible_streams("intake_voice") == ()
    assert s.STREAM_REQUESTS in natsauth.visible_streams("router")


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = natsauth.ensure_secrets(tmp_path)
    assert set(first) == set(natsauth.USERS)
    assert all(len(p.encode()) >= 32 for p in first.values())
    assert len(set(first.values())) == len(first)
    assert natsauth.ensure_secrets(tmp_path) == first
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    text = (tmp_path / natsauth.PASSWORDS_NAME).read_text()
    assert f'FD_NATS_PASSWORD_ROUTER: "{first["router"]}"' in text
    assert natsauth.main(["secrets", str(tmp_path)]) == 1  # never rotates silently


STRONG = "x" * 12 + "0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FRONTDESK_NATS_USER": "router", "FRONTDESK_NATS_PASSWORD": "short"}, "FRONTDESK_NATS_PASSWORD:"),
        (
            {"FRONTDESK_NATS_USER": "router", "FRONTDESK_NATS_PASSWORD": "change-me" + "x" * 40},
            "FRONTDESK_NATS_PASSWORD:",
        ),
        ({}, "FRONTDESK_NATS_USER:"),
        ({"FRONTDESK_NATS_TOKEN": "tiny"}, "FRONTDESK_NATS_TOKEN:"),
    ],
)
def test_weak_bus_credentials_are_refused_outside_development(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_bus(env)
    assert load_bus({**env, "FRONTDESK_ENV": "development"}).user == env.get("FRONTDESK_NATS_USER", "")


def test_the_password_file_is_read_and_named(tmp_path: Path) -> None:
    secret = tmp_path / "router.password"
    secret.write_text(STRONG + "\n")
    cfg = load_bus({"FRONTDESK_NATS_USER": "router", "FRONTDESK_NATS_PASSWORD_FILE": str(secret)})
    assert cfg.password == Secret(STRONG)
    assert STRONG not in repr(cfg)
    secret.write_text("weak\n")
    with pytest.raises(ConfigError, match="FRONTDESK_NATS_PASSWORD_FILE:"):
        load_bus({"FRONTDESK_NATS_USER": "router", "FRONTDESK_NATS_PASSWORD_FILE": str(secret)})
    with pytest.raises(ConfigError, match="FRONTDESK_NATS_PASSWORD_FILE: cannot read"):
        load_bus({"FRONTDESK_NATS_USER": "router", "FRONTDESK_NATS_PASSWORD_FILE": str(tmp_path / "no")})
