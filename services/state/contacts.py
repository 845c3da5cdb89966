"""Per-contact state: opt-outs and last touches kept (fd_contacts), counters that expire (fd_windows).

Every key is `<family>.<id>` (made KV-safe by `subjects.kv_key`), built only by `records.Family.key`;
the bucket says how long it lives (fd_windows has a TTL, fd_contacts none).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.common.bus import Bus
from services.common.kvview import KvView
from services.contracts import subjects as s
from services.state.records import Family, Records


class OptOut(msgspec.Struct, frozen=True, kw_only=True):
    opted_out: bool
    at: datetime


class LastTouch(msgspec.Struct, frozen=True, kw_only=True):
    """The client's most recent finished job, quoted to the next tech as context."""

    text: str
    ticket_number: str
    at: datetime


OPT_OUT = Family("optout", s.KV_CONTACTS, OptOut)  # by phone: STOP / START
LAST_TOUCH = Family("touch", s.KV_CONTACTS, LastTouch)  # by client id
UPDATE_STAMP = Family("update", s.KV_WINDOWS, datetime)  # by ticket: when the client was last updated


class ContactState(Records):
    """Records, plus two families read on every send or dispatch and followed by a watch instead
    (`KvView`, started on first use): a read per message would cost a round trip each time."""

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus)
        self.opt_outs: KvView[OptOut] = KvView(bus, OPT_OUT.bucket, OPT_OUT.pattern, OPT_OUT.decoder.decode)
        self.touches: KvView[LastTouch] = KvView(
            bus, LAST_TOUCH.bucket, LAST_TOUCH.pattern, LAST_TOUCH.decoder.decode
        )

    async def opted_out(self, phone: str) -> bool:
        """Whether the phone said STOP (and not START since). The view may trail a change by a moment,
        as the opt-out consumer always could trail the message that follows a STOP (Twilio refuses a
        send to an opted-out phone with 21610 regardless); an opt-out it shows is confirmed on the
        stored record, so a START is never missed."""
        await self.opt_outs.ensure()
        listed = self.opt_outs.items.get(OPT_OUT.key(phone))
        if listed is None or not listed.opted_out:
            return False
        record = await self.get(OPT_OUT, phone)
        return record is not None and record.opted_out

    async def last_touch(self, client_id: str) -> LastTouch | None:
        """The client's last finished job, as the view has it (context for a tech: a moment late is fine)."""
        await self.touches.ensure()
        return self.touches.items.get(LAST_TOUCH.key(client_id))

    async def close(self) -> None:
        """Delete the views' watch consumers."""
        await self.opt_outs.close()
        await self.touches.close()
