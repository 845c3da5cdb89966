"""The sender under a burst to one recipient: arrival order at Twilio, one SMS per key, failures kept."""

from __future__ import annotations

import asyncio
import collections

import httpx
import msgspec

from services.common.natsserver import free_port
from services.contracts import SendSms
from services.contracts import subjects as s
from services.contracts.commands import Purpose
from services.notifier.app import main
from services.notifier.delivery import DeliveryRecord
from services.notifier.suppression import RATE_LIMIT
from tests.notifier.stack import ALICE, BOB, JANE, NOW, Stack
from tests.support import serving

BURST = 40


def texts(
    n: int, to: str = ALICE, run: str = "b", start: int = 0, purpose: Purpose = "tech_dispatch"
) -> list[SendSms]:
    return [
        SendSms(
            key=f"burst.{run}.{i}",
            to=to,
            body=f"job {run}-{i:03d}",
            purpose=purpose,
            created_at=NOW,
            client_id="acme",
            ticket_number=f"SR-{3000 + i}",
        )
        for i in range(start, start + n)
    ]


async def publish(stack: Stack, messages: list[SendSms], *, again: bool = False) -> None:
    """On the outbox as the workflow sends them, one after the other (a redelivery: another msg id)."""
    for message in messages:
        msg_id = f"{message.key}.again" if again else message.key
        await stack.bus.publish(s.OUTBOX_SMS, message, msg_id=msg_id)


def bodies(stack: Stack, to: str) -> list[str]:
    return [m["body"] for m in stack.sms(to)]


async def states(stack: Stack, messages: list[SendSms]) -> list[str]:
    found: list[str] = []
    for message in messages:
        value, _ = await stack.bus.kv_get(s.KV_OUTBOUND, s.kv_key(f"out.{message.key}"))
        found.append(msgspec.json.decode(value, type=DeliveryRecord).state if value else "missing")
    return found


async def test_a_burst_to_one_recipient_reaches_twilio_in_arrival_order_once_each(stack: Stack) -> None:
    burst, other = texts(BURST), texts(5, to=BOB, run="o")
    # Bob's texts interleaved with the first of Alice's: another recipient never waits on her turns.
    await publish(
        stack, [*(m for pair in zip(burst, other, strict=False) for m in pair), *burst[len(other) :]]
    )
    await stack.until(lambda: len(stack.sms(ALICE)) >= BURST and len(stack.sms(BOB)) >= 5)
    await stack.settled()
    assert bodies(stack, ALICE) == [m.body for m in burst]
    assert bodies(stack, BOB) == [m.body for m in other]
    assert set(await states(stack, burst)) == {"sent"}


async def test_a_burst_to_one_client_fills_the_rate_window_in_arrival_order(stack: Stack) -> None:
    burst = texts(RATE_LIMIT + 4, to=JANE, run="c", purpose="client_update")
    await publish(stack, burst)
    await stack.until(lambda: len(stack.sms(JANE)) >= RATE_LIMIT)
    await stack.settled()
    # The window admits the first ten as they arrived and refuses the rest, not any ten.
    assert bodies(stack, JANE) == [m.body for m in burst[:RATE_LIMIT]]
    assert await states(stack, burst) == ["sent"] * RATE_LIMIT + ["suppressed"] * 4


async def test_redelivered_messages_send_nothing_twice(stack: Stack) -> None:
    burst = texts(20)
    await publish(stack, burst)
    await publish(stack, burst, again=True)  # as JetStream redelivers after a crash before the ack
    await stack.until(lambda: len(stack.sms(ALICE)) >= 20)
    await stack.settled()
    assert bodies(stack, ALICE) == [m.body for m in burst]


async def test_a_failing_send_mid_burst_neither_loses_nor_doubles_its_neighbours(stack: Stack) -> None:
    first, rest = texts(10), texts(20, start=10)
    await publish(stack, first)
    await stack.until(lambda: len(stack.sms(ALICE)) >= 10)
    async with httpx.AsyncClient() as http:
        # The next request gets a 500 (nothing created), the one after is created but its answer is
        # lost (502): the sender asks Twilio's list before sending again, and its neighbours wait.
        armed = await http.post(f"{stack.sandbox.url}/api/faults", json={"burst": [500], "lost_responses": 1})
        armed.raise_for_status()
    await publish(stack, rest)
    await stack.until(lambda: len(stack.sms(ALICE)) >= 30)
    await stack.settled()
    assert bodies(stack, ALICE) == [m.body for m in first + rest]
    assert set(await states(stack, first + rest)) == {"sent"}


async def test_a_refused_send_mid_burst_falls_back_once_and_its_neighbours_go_in_order(stack: Stack) -> None:
    first = texts(3, to=JANE, run="f", purpose="client_update")
    rest = [
        msgspec.structs.replace(m, fallback_email="jane@acme.example")
        for m in texts(5, to=JANE, run="f", start=3, purpose="client_update")
    ]
    await publish(stack, first)
    await stack.until(lambda: len(stack.sms(JANE)) >= 3)
    async with httpx.AsyncClient() as http:
        # Twilio refuses the next request outright (a 400 no retry fixes): that text falls back to email.
        (await http.post(f"{stack.sandbox.url}/api/faults", json={"burst": [400]})).raise_for_status()
    await publish(stack, rest)
    await stack.until(lambda: len(stack.sms(JANE)) >= 7 and len(stack.emails("jane@acme.example")) >= 1)
    await stack.settled()
    assert bodies(stack, JANE) == [m.body for m in first + rest if m.key != rest[0].key]
    (fallback,) = stack.emails("jane@acme.example")
    assert fallback["subject"].startswith(f"Update on {rest[0].ticket_number} ")
    assert await states(stack, first + rest) == ["sent"] * 3 + ["failed"] + ["sent"] * 4


async def test_two_notifiers_on_one_durable_send_each_key_once(stack: Stack) -> None:
    cfg = msgspec.structs.replace(stack.cfg, http_port=free_port())
    async with serving(main, cfg, clock=stack.clock):
        burst = texts(60) + texts(20, to=BOB, run="o")
        await publish(stack, burst)
        await publish(stack, burst[:30], again=True)
        await stack.until(lambda: len(stack.sms()) >= 80)
        await stack.settled()
        await asyncio.sleep(0.3)  # a doubled send would land after the last first one
    counts = collections.Counter(bodies(stack, ALICE) + bodies(stack, BOB))
    assert counts == collections.Counter(m.body for m in burst)
    assert set(await states(stack, burst)) == {"sent"}
