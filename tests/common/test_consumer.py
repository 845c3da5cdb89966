"""The pull loop of every durable consumer (Consumer, the console projection): it outlives its consumer."""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.bus import Bus
from services.common.consumer import pull_batches
from services.contracts import subjects as s
from tests.support import email_request, until

DURABLE = "t-pull"


async def test_pull_batches_subscribes_again_when_its_consumer_is_lost(bus: Bus) -> None:
    """A consumer deleted under the loop (as a server restart without its store does) is created again,
    and what is published afterwards is still applied, in batches, until stop."""
    config = ConsumerConfig(
        durable_name=DURABLE,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=s.REQUESTS_ALL,
    )
    subscribed: list[int] = []
    applied: list[str] = []
    batches: list[int] = []

    async def subscribe() -> JetStreamContext.PullSubscription:
        subscribed.append(len(applied))
        await bus.js.add_consumer(s.STREAM_REQUESTS, config)
        return await bus.js.pull_subscribe(
            s.REQUESTS_ALL, durable=DURABLE, stream=s.STREAM_REQUESTS, config=config
        )

    async def apply(msgs: list[Msg]) -> None:
        batches.append(len(msgs))
        for msg in msgs:
            applied.append(msg.headers["Nats-Msg-Id"] if msg.headers else "")
            await msg.ack()

    async def publish(n: int) -> None:
        await bus.publish(s.request_subject("email"), email_request(n), msg_id=f"req-{n}")

    for n in (1, 2, 3):
        await publish(n)
    stop = asyncio.Event()
    loop = asyncio.create_task(pull_batches(stop, subscribe, 2, apply, durable=DURABLE))
    await until(lambda: len(applied) == 3, timeout=10, what="the first three applied")
    assert max(batches) <= 2
    await bus.js.delete_consumer(s.STREAM_REQUESTS, DURABLE)
    await publish(4)
    await until(lambda: "req-4" in applied, timeout=20, what="a message after the consumer was lost")
    assert len(subscribed) >= 2  # subscribed again, not stuck on the lost consumer
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert loop.result() is None
