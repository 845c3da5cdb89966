"""The whole "no surprises" story: a premium emergency email at 9 pm, the on-call page, escalation,
the second tech's DELAY, the client's updates, DONE. Prints the sandbox transcript."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.e2e.conftest import Stack, until
from tests.e2e.test_acceptance import BOB, CAROL, MON_2100, emails_for

JANE_EMAIL = "jane@acme.example"


async def test_premium_emergency_story(stack: Stack) -> None:
    stack.clock.set(MON_2100)
    await stack.mail(
        JANE_EMAIL, "Server down at the plant", "The MES server is offline; the line is stopped."
    )

    async def texts_to(phone: str, count: int) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            found = await stack.sms_to(phone)
            return found if len(found) >= count else None

        result: list[dict[str, Any]] = await until(enough, what=f"{count} SMS to {phone}")
        return result

    [page] = await texts_to(BOB, 1)
    assert page["body"].startswith("SR-1001 EMERGENCY Acme Manufacturing (premium)")
    await emails_for(stack, JANE_EMAIL, 1)  # the acknowledgment
    await stack.settled()

    # Bob does not answer within ack_timeout (10 min): the next tech in the rotation is paged.
    stack.clock.advance(timedelta(minutes=10, seconds=1))
    [escalated] = await texts_to(CAROL, 1)
    assert "SR-1001" in escalated["body"]
    await stack.settled()

    await stack.text(CAROL, "DELAY 30 waiting for VPN access")
    delay = (await emails_for(stack, JANE_EMAIL, 2))[-1]
    assert "running late" in delay["body"] and "waiting for VPN access" in delay["body"]
    await stack.settled()

    await stack.text(CAROL, "DONE")
    done = (await emails_for(stack, JANE_EMAIL, 3))[-1]
    assert "SR-1001" in done["subject"]
    await stack.settled()

    sms = await stack.messages()
    emails = await stack.emails()
    print("\n--- sandbox SMS ---")
    for m in sms:
        print(f"{m['to']}: {m['body']}")
    print("--- sandbox email ---")
    for e in emails:
        print(f"{e['to']}: {e['subject']}\n  {e['body'].strip()[:300]}")
    # Nobody else was texted: bob (paged), carol (escalation), and the replies' confirmations to carol.
    assert {m["to"] for m in sms} <= {BOB, CAROL}
    assert all(JANE_EMAIL in str(e["to"]) for e in emails)
