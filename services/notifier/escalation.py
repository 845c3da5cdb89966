"""Acceptance timers and what their firing means: escalation, running-late warnings, breaches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
from nats.js.errors import KeyNotFoundError

from services.common.kvview import KvView
from services.contracts import DeliveryFailed, Ticket
from services.contracts import subjects as s
from services.notifier import timers
from services.notifier.channels import Channels
from services.notifier.internal import TIMER_FIRED, TimerFired
from services.notifier.timers import Timer
from services.policy.decide import desk_calendar
from services.state.contacts import UPDATE_STAMP
from services.state.timers import run_timers
from services.wording import times

OPS = "ops"  # assignee once every tech was tried: the desk ops contact owns the ticket
_encode_timer = msgspec.json.Encoder().encode


class Escalation:
    """The notifier's durable timers (arming, firing) and what a firing means for the ticket."""

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        # The policy is loaded once at start (the notifier has no reload), so its desk calendar is too.
        self.desk_calendar = desk_calendar(channels.policy)
        # Followed by one watch (see KvView: never kv.keys() per poll).
        self.timers: KvView[Timer] = KvView(
            channels.bus, s.KV_TIMERS, f"{timers.OWNER}.>", timers.decode_timer
        )

    async def arm(self, timer: Timer, *, replace: bool = False) -> None:
        """Create the timer unless one exists (a redelivered dispatch must not push it back); with
        `replace`, overwrite it. Either way one write, no read first."""
        encoded = _encode_timer(timer)
        if replace:
            await self.channels.bus.kv_put(s.KV_TIMERS, timer.key, encoded)
        else:
            await self.channels.bus.kv_create(s.KV_TIMERS, timer.key, encoded)

    async def arm_all(self, planned: list[Timer], *, replace: bool = False) -> None:
        """Several timers of one ticket: separate keys, so their writes go out together."""
        await asyncio.gather(*(self.arm(timer, replace=replace) for timer in planned))

    def plan(self, ticket: Ticket) -> list[Timer]:
        """The ticket's ack, warn and due timers as the policy sets them, counted from now."""
        return timers.plan(
            ticket,
            dispatched_at=self.channels.clock.now(),
            ack_timeout=self.channels.policy.oncall.ack_timeout,
            warn_before=self.channels.policy.delay_updates.warn_before,
            business_subtract=self._business_subtract(ticket),
        )

    def _business_subtract(self, ticket: Ticket) -> Callable[[datetime, timedelta], datetime] | None:
        decision = ticket.decision
        tier = self.channels.policy.tiers.get(decision.tier)
        if tier is None:
            return None
        target = tier.targets.emergency if decision.priority == "emergency" else tier.targets.normal
        business = timers.warn_uses_business_time(
            business_clock=target.clock == "business",
            tier=decision.tier,
            emergency=decision.priority == "emergency",
        )
        if not business:
            return None
        return self.desk_calendar.business_subtract

    async def rearm_ack(self, number: str, step: int) -> None:
        """A fresh acceptance clock from now: the tech who has the ticket at `step` must accept in time."""
        due = self.channels.clock.now() + self.channels.policy.oncall.ack_timeout
        await self.arm(Timer(kind="ack", ticket_number=number, due=due, step=step), replace=True)

    async def fire_due_timers(self) -> datetime | None:
        """Publish every due timer's command, then delete it; returns the next due instant."""
        await self.timers.ensure()
        self.channels.metrics.timers_pending.set(len(self.timers.items))
        now = self.channels.clock.now()
        upcoming: datetime | None = None
        kv = await self.channels.bus.kv(s.KV_TIMERS)
        for key, seen in sorted(self.timers.items.items(), key=lambda item: item[1].due):
            if seen.due > now:
                upcoming = seen.due if upcoming is None else min(upcoming, seen.due)
                continue
            # The view may trail a re-arm or a delete by another replica: act on the key as it is now.
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                self.timers.forget(key)
                continue
            if not entry.value:
                self.timers.forget(key)
                continue
            timer = timers.decode_timer(entry.value)
            if timer.due > now:
                upcoming = timer.due if upcoming is None else min(upcoming, timer.due)
                continue
            fired = TimerFired(
                id=timer.fire_id,
                kind=timer.kind,
                ticket_number=timer.ticket_number,
                due=timer.due,
                step=timer.step,
            )
            await self.channels.bus.publish(s.notify_subject(TIMER_FIRED), fired, msg_id=fired.id)
            # Delete only the revision we fired: a timer re-armed meanwhile survives. The view learns
            # of the delete from the watch (forgetting here could drop a re-arm it already saw).
            with contextlib.suppress(Exception):
                await kv.delete(key, last=entry.revision)
        return upcoming

    async def timer_loop(self, stop: asyncio.Event) -> None:
        await run_timers(
            self.fire_due_timers,
            self.timers,
            self.channels.clock,
            stop,
            poll=self.channels.cfg.timer_poll,
            name="notifier",
        )

    async def fired(self, timer: Timer) -> None:
        ticket = await self.channels.ticket(timer.ticket_number)
        if ticket is None:
            return
        firing = timers.on_fire(
            timer,
            ticket,
            rotation=self.channels.policy.oncall.rotation,
            warn_before=self.channels.policy.delay_updates.warn_before,
        )
        if isinstance(firing, timers.Escalate):
            await self.escalate(ticket, firing)
        elif isinstance(firing, timers.WarnLate):
            self.channels.metrics.tickets_at_risk.inc()
            await self.warn_late(ticket, firing.new_estimate, timer)
        elif isinstance(firing, timers.Breach):
            self.channels.metrics.tickets_breached.inc()
            ops = self.channels.policy.desk.ops_contact
            key = f"breach.{ticket.number}"
            await self.channels.tell_client(ticket, "client_missed", "client_update", key, ops_name=ops.name)
            await self.channels.tell_ops(ticket, "response target missed, nobody accepted", key=f"ops.{key}")
            await self.channels.timeline(
                ticket, "breached", "Response target missed", f"breached.{ticket.number}", "system"
            )

    async def escalate(self, ticket: Ticket, step: timers.Escalate) -> None:
        new_assignee = step.tech or OPS

        def move(current: Ticket | None) -> Ticket | None:
            if current is None or current.status != "dispatched" or current.escalation_step != step.step - 1:
                return None
            return msgspec.structs.replace(current, assignee=new_assignee, escalation_step=step.step)

        moved = await self.channels.update_ticket(ticket.number, move)
        if moved is None or moved.escalation_step != step.step or moved.assignee != new_assignee:
            return
        tech = self.channels.tech(step.tech)
        if tech is not None:
            body = await self.channels.dispatch_text(moved, escalated=True)
            await self.channels.text_tech(
                tech, moved, body, "tech_escalation", key=f"escalate.{moved.number}.{step.step}"
            )
            await self.rearm_ack(moved.number, step.step)
            text = f"Escalated to {tech.name} ({tech.phone})"
        else:
            await self.channels.tell_ops(
                moved, "no technician accepted", key=f"escalate.{moved.number}.{step.step}"
            )
            text = "Escalated to the operations desk"
        await self.channels.timeline(
            moved, "escalated", text, f"escalated.{moved.number}.{step.step}", new_assignee
        )

    async def warn_late(self, ticket: Ticket, estimate: datetime, timer: Timer) -> None:
        now = self.channels.clock.now()
        interval = self.channels.policy.delay_updates.min_interval

        def stamp(last: datetime | None) -> tuple[bool, datetime]:
            return last is None or now - last >= interval, now

        # Throttle client updates per ticket so a DELAY and a warn do not arrive back to back.
        if not await self.channels.contacts.admit(UPDATE_STAMP, ticket.number, stamp):
            return
        key = f"warn.{ticket.number}.{timer.due.isoformat()}"
        await self.channels.tell_client(
            ticket, "client_running_late", "client_delay", s.kv_key(key), estimate=estimate
        )
        await self.channels.tell_ops(
            ticket, "running late on the response target", key=s.kv_key(f"ops.{key}")
        )
        await self.channels.timeline(
            ticket,
            "delay_update_sent",
            f"Client told we are running late; new estimate {times.stamp(estimate, self.channels.zone)}",
            s.kv_key(key),
            "system",
        )

    async def delivery_failed(self, failed: DeliveryFailed) -> None:
        if failed.message.ticket_number is None:
            return
        ticket = await self.channels.ticket(failed.message.ticket_number)
        if ticket is None or ticket.status != "dispatched":
            return
        tech = self.channels.tech(ticket.assignee)
        if tech is None or tech.phone != failed.message.to:
            return
        # An unreachable tech cannot accept: treat it as an acceptance timeout now.
        await self.fired(
            Timer(kind="ack", ticket_number=ticket.number, due=failed.at, step=ticket.escalation_step)
        )
