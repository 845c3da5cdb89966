"""The router's release timers: a queued ticket is dispatched when its open time comes."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec

from services.common.bus import Bus
from services.common.clock import Clock
from services.common.kvview import KvView
from services.common.metrics import Metrics
from services.contracts import (
    DispatchTicket,
    Ticket,
    TimelineEntry,
)
from services.contracts import subjects as s
from services.policy.model import Policy
from services.router import routing as r
from services.state.cell import GroupedCell
from services.state.tickets import TicketStore
from services.state.timers import run_timers

_release_timer = msgspec.json.Decoder(r.ReleaseTimer)


class Releases:
    """The router's state and stores, and the release of queued tickets."""

    def __init__(self, bus: Bus, policy: Policy, clock: Clock) -> None:
        self.bus = bus
        self.policy = policy
        self.clock = clock
        self.metrics = Metrics()
        self.tickets_opened = 0
        self.released = 0
        # The release timers, followed by one watch (see KvView: never kv.keys() per poll).
        self.pending = KvView(bus, s.KV_TIMERS, f"{r.TIMER_PREFIX}>", _release_timer.decode)
        # Ticket numbers count up in fd_sequences "ticket" as decimal text, as deployed desks have them.
        # Every new ticket steps both: concurrent requests share one write per key (GroupedCell).
        self._numbers = GroupedCell(bus, s.KV_SEQUENCES, "ticket")
        self._cursor = GroupedCell(bus, s.KV_ROUTER, r.CURSOR_KEY)
        self.tickets = TicketStore(bus)

    async def _ticket(self, number: str) -> Ticket | None:
        return await self.tickets.get(number)

    async def _timeline(self, item: TimelineEntry) -> None:
        await self.bus.publish(s.timeline_subject(item.client_id), item, msg_id=item.id)

    # -- queued tickets -------------------------------------------------------------------------

    async def release_due(self) -> int:
        """Dispatch every queued ticket whose open time has come, oldest first; returns how many."""
        await self.pending.ensure()
        kv = await self.bus.kv(s.KV_TIMERS)
        now = self.clock.now()
        fired = 0
        for key, _ in r.due_timers(self.pending.items, now):
            # The watch may trail a delete by another router: act on the key as it is now.
            raw, _ = await self.bus.kv_get(s.KV_TIMERS, key)
            if raw is None:
                self.pending.forget(key)
                continue
            timer = _release_timer.decode(raw)
            if timer.due > now:
                continue
            ticket = await self._ticket(timer.ticket_number)
            if ticket is not None:
                # Same Msg-Id as an immediate dispatch: two routers firing one timer publish once.
                await self.bus.publish(
                    s.notify_subject("dispatch_ticket"),
                    DispatchTicket(id=f"dispatch:{ticket.number}", ticket=ticket, released_from_queue=True),
                    msg_id=f"dispatch:{ticket.number}",
                )
                await self._timeline(
                    r.entry(
                        "released",
                        key=ticket.number,
                        at=timer.due,
                        client_id=ticket.client_id,
                        text=f"Released from the queue to {ticket.assignee or 'nobody'}.",
                        ticket=ticket.number,
                        request_id=ticket.request_id,
                    )
                )
                self.released += 1
            await kv.delete(key)
            # Safe to drop at once: a release timer is armed once per ticket, never re-armed.
            self.pending.forget(key)
            fired += 1
        return fired

    async def next_due(self) -> datetime | None:
        await self.pending.ensure()
        self.metrics.timers_pending.set(len(self.pending.items))
        return r.next_release(self.pending.items)

    async def release_and_plan(self) -> datetime | None:
        """One round of the timer loop: release what is due; returns when the next release is due."""
        await self.release_due()
        return await self.next_due()

    async def run_timers(self, stop: asyncio.Event, poll: float) -> None:
        await run_timers(
            self.release_and_plan, self.pending, self.clock, stop, poll=poll, name="router release"
        )

    async def close(self) -> None:
        await self.pending.close()
        await self._numbers.close()
        await self._cursor.close()
