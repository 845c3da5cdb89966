"""The ticket store (KV fd_tickets): typed reads and compare-and-set updates, decoded by one decoder.

Ownership: the router creates tickets and owns the routing fields (request ids); the notifier owns
status, assignee and eta once a ticket is dispatched. Both change a ticket only through `update`,
which re-reads it, so no writer trusts a command's snapshot over what is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from services.common.bus import Bus
from services.contracts import Ticket
from services.contracts import subjects as s

decode = msgspec.json.Decoder(Ticket).decode


class TicketStore:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def get(self, number: str) -> Ticket | None:
        value, _ = await self.bus.kv_get(s.KV_TICKETS, s.kv_key(number))
        return decode(value) if value else None

    async def create(self, ticket: Ticket) -> Ticket:
        """Store a new ticket unless one with its number exists; returns the stored one."""
        stored = await self.bus.kv_create(s.KV_TICKETS, s.kv_key(ticket.number), msgspec.json.encode(ticket))
        return decode(stored)

    async def update(self, number: str, change: Callable[[Ticket | None], Ticket | None]) -> Ticket | None:
        """Compare-and-set the ticket as stored now; `change` returns None to leave it alone.

        Returns the stored ticket (None when there is none and `change` created none).
        """

        def mutate(current: bytes | None) -> bytes | None:
            new = change(decode(current) if current else None)
            return None if new is None else msgspec.json.encode(new)

        stored = await self.bus.kv_update(s.KV_TICKETS, s.kv_key(number), mutate)
        return decode(stored) if stored else None
