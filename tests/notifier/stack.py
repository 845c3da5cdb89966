"""The notifier's test stack: its main() on a ManualClock, the in-process sandbox, a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.common.config import BusConfig, Secret
from services.common.natsserver import free_port
from services.contracts import DispatchTicket, TechReplied, Ticket, TimelineEntry
from services.contracts import subjects as s
from services.notifier.app import main
from services.notifier.config import NotifierConfig, TwilioConfig
from services.sandbox.app import Sandbox
from services.state.tickets import TicketStore
from tests.notifier import ticketing
from tests.support import settled, until

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
NOW = ticketing.NOW  # the sample ticket's: Monday 09:00 in Chicago, in hours
DURABLES = s.NOTIFIER_DURABLES
ALICE, BOB, CAROL = "+13125550101", "+13125550102", "+13125550103"
JANE = ticketing.JANE  # the sample ticket's client
OPS = "+13125550100"


@dataclass
class Stack:
    bus: Bus
    sandbox: Sandbox
    clock: ManualClock
    cfg: NotifierConfig
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(main(self.cfg, stop=self.stop, clock=self.clock))

    def sms(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.sandbox.ledger.messages if to is None or m["to"] == to]

    def emails(self, to: str) -> list[dict[str, Any]]:
        return [e for e in self.sandbox.ledger.emails if to in e["to"]]

    async def until(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        await until(check, timeout)

    async def settled(self) -> None:
        """Every consumer of ours has nothing pending (so anything it would send, it sent)."""
        await settled(self.bus, DURABLES)

    async def timers_fired(self, number: str, kind: str) -> None:
        for _ in range(200):
            value, _ = await self.bus.kv_get(s.KV_TIMERS, f"notifier.{kind}.{number}")
            if value is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timer {kind} of {number} did not fire")


def notifier_config(bus_config: BusConfig, sandbox: Sandbox, **overrides: Any) -> NotifierConfig:
    """A notifier run in the test's process, texting through the sandbox, retrying and polling its timers
    quickly; `overrides` replace any of its fields."""
    fields: dict[str, Any] = {
        "http_port": free_port(),
        "relay_port": sandbox.smtp_port,
        "twilio": TwilioConfig(
            account_sid=sandbox.cfg.account_sid,
            auth_token=sandbox.cfg.auth_token,
            from_="+13125550199",
            api_base=sandbox.url,
        ),
        "thread_secret": Secret("test-secret"),
        "policy": str(POLICY),
        "bus": bus_config,
        "retry_base": 0.01,
        "timer_poll": 0.05,
    }
    fields.update(overrides)
    return NotifierConfig(**fields)


@contextlib.asynccontextmanager
async def running(
    bus: Bus, bus_config: BusConfig, *, sandbox_clock: bool = False, **overrides: Any
) -> AsyncIterator[Stack]:
    """The notifier's main() on a ManualClock against an in-process sandbox; `overrides` go to its config.

    `sandbox_clock` puts the sandbox on the same clock, so Twilio's timestamps agree with ours.
    """
    clock = ManualClock(NOW)
    sandbox = Sandbox(Sandbox.on_free_ports().cfg, clock) if sandbox_clock else Sandbox.on_free_ports()
    await sandbox.start()
    cfg = notifier_config(bus_config, sandbox, **overrides)
    stop = asyncio.Event()
    task = asyncio.create_task(main(cfg, stop=stop, clock=clock))
    stack = Stack(bus=bus, sandbox=sandbox, clock=clock, cfg=cfg, stop=stop, task=task)
    try:
        yield stack
    finally:
        if not stack.task.done():
            await stack.halt()
        await sandbox.stop()


def make_ticket(number: str = "SR-1042", channel: Any = "email") -> Ticket:
    """The sample ticket as the router stores it: queued, before the notifier's commitment is made."""
    return ticketing.ticket(number, channel=channel, status="queued", response_due=None)


async def dispatch(
    stack: Stack, ticket: Ticket, command_id: str = "cmd-1", msg_id: str | None = None
) -> None:
    """As the router does: the ticket is stored (unless it is already), then the command names it."""
    await TicketStore(stack.bus).create(ticket)
    command = DispatchTicket(id=command_id, ticket=ticket)
    await stack.bus.publish(s.notify_subject("dispatch"), command, msg_id=msg_id or command_id)


async def reply(stack: Stack, sid: str, phone: str, verb: Any, **kw: Any) -> None:
    event = TechReplied(id=sid, phone=phone, received_at=stack.clock.now(), verb=verb, **kw)
    await stack.bus.publish(s.TECH_REPLIED, event, msg_id=sid)


async def stored(stack: Stack, number: str) -> Ticket:
    value, _ = await stack.bus.kv_get(s.KV_TICKETS, number)
    assert value is not None
    return msgspec.json.decode(value, type=Ticket)


async def timeline(stack: Stack) -> list[TimelineEntry]:
    info = await stack.bus.js.stream_info(s.STREAM_TIMELINE)
    entries = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await stack.bus.js.get_msg(s.STREAM_TIMELINE, seq)
        entries.append(msgspec.json.decode(raw.data or b"", type=TimelineEntry))
    return entries
