"""Notifier service wiring: consumers, the timer loop, the outbound sender, health; the work is elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client as TwilioClient

from services.common.bus import Bus
from services.common.clock import Clock, SystemClock
from services.common.consumer import Consumer, ConsumerSpec, Delivery
from services.common.http import HttpServer, health_app
from services.common.metrics import follow_storage, watch_consumer_lag
from services.contracts import (
    OptOutChanged,
    SendEmail,
    SendSms,
    SmsStatusReported,
    TechReplied,
)
from services.contracts import subjects as s
from services.notifier.answers import Answers
from services.notifier.channels import Channels
from services.notifier.config import NotifierConfig
from services.notifier.escalation import Escalation
from services.notifier.internal import (
    NotifyCommand,
    phone_lane,
    report_lane,
    sender_lane,
    ticket_lane,
)
from services.notifier.outbound import Sender
from services.notifier.workflow import Workflow
from services.policy.load import load_policy
from services.policy.model import Policy
from services.wording import catalog as wording
from services.wording.catalog import Wording

__all__ = ["Notifier", "main"]

Handler = Callable[[Any, Delivery], Awaitable[None]]


class Notifier:
    """The notifier's parts, each holding the ones it works with: channels (lookups, stores, sending),
    escalation (timers), the workflow (commands) and answers (replies). No part inherits another."""

    def __init__(
        self, bus: Bus, cfg: NotifierConfig, policy: Policy, clock: Clock, words: Wording | None = None
    ) -> None:
        self.channels = Channels(bus, cfg, policy, clock, words)
        self.escalation = Escalation(self.channels)
        self.workflow = Workflow(self.channels, self.escalation)
        self.answers = Answers(self.channels, self.escalation)

    async def close(self) -> None:
        """Delete the watch consumers of the views the parts keep."""
        await self.escalation.timers.close()
        await self.channels.tickets.close()
        await self.channels.contacts.close()


async def main(cfg: NotifierConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    clock = clock or SystemClock()
    policy = load_policy(cfg.policy)
    words = wording.load(cfg.templates or None)  # a template that cannot render refuses the start
    bus = await Bus.connect(cfg.bus, "notifier", stop=stop)
    await bus.ensure_topology(stop=stop)
    http_client = AsyncTwilioHttpClient(timeout=10)
    twilio = TwilioClient(cfg.twilio.account_sid, cfg.twilio.auth_token.reveal(), http_client=http_client)
    if cfg.twilio.api_base:
        # The sandbox speaks Twilio's REST paths; only the host differs.
        twilio.api.base_url = cfg.twilio.api_base.rstrip("/")
    notifier = Notifier(bus, cfg, policy, clock, words)
    sender = Sender(bus, cfg, clock, twilio)
    sender.metrics = notifier.channels.metrics  # one registry per process, served on /metrics

    # One durable per kind of message, each with its own handler and lanes: nothing forks by kind here.
    # Which stream each durable reads is said once, in subjects.NOTIFIER_DURABLES.
    streams = {durable: stream for stream, durable in s.NOTIFIER_DURABLES}

    def spec(durable: str, subject: str, **options: Any) -> ConsumerSpec:
        return ConsumerSpec(streams[durable], durable, subject, **options)

    work, answer = notifier.workflow, notifier.answers
    status, opt_out, outgoing = s.SMS_STATUS_REPORTED, s.OPT_OUT_CHANGED, SendSms | SendEmail
    routes: list[tuple[ConsumerSpec, Any, Handler, Callable[[Any], frozenset[str]]]] = [
        (spec(s.DURABLE_NOTIFIER, s.NOTIFY_ALL), NotifyCommand, work.handle_notify, ticket_lane),
        (spec(s.DURABLE_NOTIFIER_REPLIES, s.TECH_REPLIED), TechReplied, answer.handle_reply, phone_lane),
        (spec(s.DURABLE_NOTIFIER_OPTOUT, opt_out), OptOutChanged, answer.handle_opt_out, phone_lane),
        (spec(s.DURABLE_NOTIFIER_STATUS, status), SmsStatusReported, sender.reported, report_lane),
        (spec(s.DURABLE_NOTIFIER_SENDER, s.OUTBOX_ALL, ack_wait=60), outgoing, sender.handle, sender_lane),
    ]  # fmt: skip
    consumers = [
        Consumer(bus, route, msgspec.json.Decoder(kind).decode, handle, lanes=lanes, width=cfg.concurrency)
        for route, kind, handle, lanes in routes
    ]
    follow_storage(sender.metrics.registry, bus)
    server = HttpServer(health_app(lambda: bus.ready, None, sender.metrics.registry), cfg.host, cfg.http_port)
    await server.start()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    tasks.append(asyncio.create_task(notifier.escalation.timer_loop(stop)))
    lagging = list(s.NOTIFIER_DURABLES)
    tasks.append(asyncio.create_task(watch_consumer_lag(notifier.channels.metrics, bus, lagging, stop)))
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await notifier.close()
        await sender.contacts.close()
        await server.stop()
        await http_client.close()
        await bus.close()
