"""Found 1 and 2 end to end: a forged From pages nobody, threads to nothing and answers nobody."""

from __future__ import annotations

import msgspec

from services.contracts import TimelineEntry
from services.contracts import subjects as s
from tests.e2e.stack import (
    BOB,
    MON_2100,
    Stack,
)
from tests.support import stream_messages, until

JANE = "jane@acme.example"


async def unknown_timeline(stack: Stack) -> list[TimelineEntry]:
    decoder = msgspec.json.Decoder(TimelineEntry)
    entries = [decoder.decode(msg.data or b"") for msg in await stream_messages(stack.bus, s.STREAM_TIMELINE)]
    return [entry for entry in entries if entry.client_id == "unknown"]


async def test_spoofed_urgent_mail_pages_nobody_and_gets_no_acknowledgment(stack: Stack) -> None:
    stack.clock.set(MON_2100)  # after hours: Acme's premium emergency target would page on-call
    await stack.mail(JANE, "URGENT server down", "Spam pretending to be Jane.", authenticated=False)
    # The display-name trick of Found 1, and a forged token: the same treatment.
    await stack.mail(
        f"{JANE} <mallory@evil.example>", "Re: [SR-1001-deadbeef] urgent", "Relay me.", authenticated=False
    )

    async def both_kept() -> list[TimelineEntry]:
        found = [e for e in await unknown_timeline(stack) if e.kind == "request_received"]
        return found if len(found) == 2 else []

    received = await until(both_kept, what="both requests on the unknown timeline")
    await stack.settled()
    assert all("sender not authenticated" in e.text for e in received)
    # Two mails, handled concurrently: the timeline may hold them in either order.
    claims = sorted(e.text.split(" (sender not authenticated")[0] for e in received)
    assert claims == ["email claiming to be jane@acme.example", "email claiming to be mallory@evil.example"]
    assert await stack.sms_to(BOB) == []  # nobody paged
    assert await stack.emails() == []  # no acknowledgment: no backscatter to the victim
