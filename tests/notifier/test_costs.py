"""What one ticket costs the notifier in JetStream operations: KV reads and writes, publishes, acks.

Each operation is a round trip the notifier waits on and work nats-server does (issue 16), so the count
per ticket is held here. The counts come from the notifier's own connection: every message it sends
passes through nats-py's `Client.publish`, which this test observes (and calls unchanged).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.client import Client

from services.contracts import AcknowledgeClient, SmsStatusReported
from services.contracts import subjects as s
from tests.notifier.stack import ALICE, Stack, dispatch, make_ticket

TICKETS = 5
# Ceilings per ticket (acknowledge + dispatch + both sends): a change that adds a round trip to the hot
# path shows up here first. Before the cut (issue 16) the same flow took 13 reads and 9 writes: the
# ticket read and CAS, two contact reads (last touch, follow-ups), read + create for each of 3 timers,
# and per SMS a claim (read + write), an opt-out read, a settle (read + write), plus the client's rate
# window (read + write). Now: the ticket read and CAS, the follow-ups read, each timer one create, the
# claim one create, the settle written at the claim's revision, opt-outs and last touches from watched
# views, the rate window written at the revision this process last wrote (read once per recipient).
CEILING = {"kv_read": 2.2, "kv_write": 9, "publish": 4, "ack": 4}


def kind_of(subject: str) -> str:
    if subject.startswith(("$JS.API.DIRECT.GET.KV_", "$JS.API.STREAM.MSG.GET.KV_")):
        return "kv_read"
    if subject.startswith("$KV."):
        return "kv_write"  # put, create, update at a revision, delete
    if subject.startswith("$JS.ACK."):
        return "ack"
    if subject.startswith(f"{s.PREFIX}."):
        return "publish"
    if subject.startswith("$JS.API.CONSUMER.MSG.NEXT."):
        return "fetch"  # pull requests: as many as the poll loop makes, not per ticket
    return "other"


@pytest.fixture
def notifier_ops() -> Iterator[collections.Counter[str]]:
    """Operations sent on the connection named "notifier", by kind."""
    counts: collections.Counter[str] = collections.Counter()
    original = Client.publish

    async def observed(self: Client, subject: str, *args: Any, **kwargs: Any) -> None:
        if self.options.get("name") == "notifier":
            counts[kind_of(subject)] += 1
        await original(self, subject, *args, **kwargs)

    Client.publish = observed  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        Client.publish = original  # type: ignore[method-assign]


async def test_jetstream_operations_per_ticket(stack: Stack, notifier_ops: collections.Counter[str]) -> None:
    await stack.until(lambda: notifier_ops["fetch"] > 0)  # every consumer is up
    await stack.settled()
    notifier_ops.clear()
    for n in range(TICKETS):
        ticket = make_ticket(number=f"SR-{2000 + n}", channel="sms")
        ack = AcknowledgeClient(id=f"ack:{ticket.number}", ticket=ticket, request_id=f"req-{n}")
        await dispatch(stack, ticket, command_id=f"dispatch:{ticket.number}")
        await stack.bus.publish(s.notify_subject("acknowledge_client"), ack, msg_id=ack.id)
    await stack.until(lambda: len(stack.sms(ALICE)) == TICKETS and len(stack.sms()) == 2 * TICKETS)
    await stack.settled()
    per_ticket = {kind: notifier_ops[kind] / TICKETS for kind in ("kv_read", "kv_write", "publish", "ack")}
    print("notifier operations per ticket:", per_ticket, "other:", notifier_ops["other"])
    assert per_ticket["ack"] == 4  # two commands and two sends, each acknowledged once
    for kind, most in CEILING.items():
        assert per_ticket[kind] <= most, (kind, per_ticket)
    # Twilio's status callbacks, as intake_voice publishes them: one "delivered" per SMS. Each is one
    # write at the revision the sender settled (before: a read and a write), and one ack.
    notifier_ops.clear()
    for sms in stack.sms():
        number = re.search(r"SR-\d+", sms["body"])
        assert number is not None
        key = f"dispatch.dispatch:{number.group()}" if sms["to"] == ALICE else f"ack.ack:{number.group()}"
        report = SmsStatusReported(
            id=f"{sms['sid']}.delivered",
            message_sid=sms["sid"],
            status="delivered",
            to=sms["to"],
            reported_at=stack.clock.now(),
            key=key,
        )
        await stack.bus.publish(s.SMS_STATUS_REPORTED, report, msg_id=report.id)
    await stack.settled()
    reported = {kind: notifier_ops[kind] / TICKETS for kind in ("kv_read", "kv_write", "ack")}
    print("status reports per ticket:", reported)
    assert reported == {"kv_read": 0, "kv_write": 2, "ack": 2}
    record, _ = await stack.bus.kv_get(s.KV_OUTBOUND, s.kv_key("out.ack.ack:SR-2000"))
    assert record is not None and b'"state":"delivered"' in record
