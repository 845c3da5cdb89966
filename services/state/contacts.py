"""Per-contact state: opt-outs and last touches kept (fd_contacts), counters that expire (fd_windows).

Every key is `<family>.<id>` (made KV-safe by `subjects.kv_key`), built only by `records.Family.key`;
the bucket says how long it lives (fd_windows has a TTL, fd_contacts none).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

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
    async def opted_out(self, phone: str) -> bool:
        record = await self.get(OPT_OUT, phone)
        return record is not None and record.opted_out
