"""The golden transcript: every message of the full premium story (an emergency email at 9 PM, the
on-call page, escalation, the second tech's DELAY and DONE, the client's thanks) and of a complimentary
after-hours call (voicemail, queued until the desk opens, dispatched with the transcript, an ETA).

The transcript is checked in (tests/e2e/golden/transcript.txt), so a change of wording shows up in
review as a diff. After a deliberate change, rewrite it: FRONTDESK_GOLDEN=rewrite make test."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.policy.load import load_policy
from tests.e2e.stack import (
    ALICE,
    BOB,
    CAROL,
    HANK,
    MON_2100,
    POLICY,
    TUE_0800,
    Stack,
    emails_for,
    sms_for,
)
from tests.e2e.transcript import Transcript
from tests.support import until

GOLDEN = Path(__file__).resolve().parent / "golden" / "transcript.txt"
JANE_EMAIL = "jane@acme.example"


async def test_golden_transcript(stack: Stack) -> None:
    story = Transcript(load_policy(POLICY))

    async def step(title: str) -> None:
        await stack.settled()
        story.heading(title, stack.clock.now())
        story.sent(await stack.messages(), await stack.emails())

    story.lines.append("# Premium: an emergency email after hours")
    stack.clock.set(MON_2100)
    await stack.mail(
        JANE_EMAIL, "Server down at the plant", "The MES server is offline; the line is stopped."
    )
    [page] = await sms_for(stack, BOB)
    assert page["body"].startswith("SR-1001 EMERGENCY Acme Manufacturing (premium)")
    [ack] = await emails_for(stack, JANE_EMAIL)
    await step("Jane Roe emails support@ (subject: Server down at the plant)")

    # Bob does not answer within ack_timeout (10 min): the next tech in the rotation is paged.
    stack.clock.advance(timedelta(minutes=10, seconds=1))
    await sms_for(stack, CAROL)
    await step("ten minutes pass without an answer from Bob")

    await stack.text(CAROL, "DELAY 30 waiting for VPN access")
    delay = (await emails_for(stack, JANE_EMAIL, 2))[-1]
    assert "running late" in delay["body"] and "waiting for VPN access" in delay["body"]
    await step("Carol texts: DELAY 30 waiting for VPN access")

    stack.clock.advance(timedelta(minutes=35))
    await stack.text(CAROL, "DONE")
    done = (await emails_for(stack, JANE_EMAIL, 3))[-1]
    assert "SR-1001" in done["subject"] and "resolved" in done["body"]
    await step("Carol texts: DONE")

    stack.clock.advance(timedelta(minutes=20))
    await stack.mail(JANE_EMAIL, f"Re: {ack['subject']}", "Thanks, all good now!")
    await step("Jane replies to the thread: Thanks, all good now!")
    assert len(await stack.emails_to(JANE_EMAIL)) == 3  # a thank-you is noted, never answered

    story.lines += ["", "# Complimentary: an after-hours call"]
    stack.clock.set(MON_2100 + timedelta(hours=1))
    exchanges = await stack.call(HANK, ["1"])
    story.heading("Hank Scorpio calls and presses 1 (emergency)", stack.clock.now())
    story.heard(HANK, exchanges)
    await sms_for(stack, HANK)
    await step("after the call")

    stack.clock.set(TUE_0800)

    async def dispatched() -> list[dict[str, Any]]:
        return [m for m in await stack.messages() if m["to"] == ALICE]

    [dispatch] = await until(dispatched, what="the queued dispatch at 8 AM")
    assert "Voicemail: " in dispatch["body"]
    await step("the desk opens: the queued ticket is dispatched")

    await stack.text(ALICE, "ETA 30")
    await sms_for(stack, HANK, count=2)
    await step("Alice texts: ETA 30")

    written = story.text()
    if os.environ.get("FRONTDESK_GOLDEN") == "rewrite":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(written, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else "(no golden transcript yet)\n"
    assert written == expected, (
        f"the messages changed; review the difference with {GOLDEN} and, if it is meant, rewrite it: "
        "FRONTDESK_GOLDEN=rewrite .venv/bin/python -m pytest tests/e2e/test_story.py"
    )
