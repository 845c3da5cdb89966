"""The notifier's commands read the stored ticket: a command's snapshot only names it."""

from __future__ import annotations

import pytest
from nats.js.errors import NotFoundError

from services.contracts import DispatchTicket, RelayClientMessage
from services.contracts import subjects as s
from services.notifier.app import Notifier
from services.notifier.workflow import TicketMissing
from services.policy.load import load_policy
from services.state.tickets import TicketStore
from tests.notifier.stack import ALICE, Stack, make_ticket, stored
from tests.support import until


async def test_a_command_for_a_ticket_not_stored_is_retried_never_acted_on_from_its_snapshot(
    stack: Stack,
) -> None:
    """Dispatch and relay read the stored ticket. Absent (a replica behind the router's write), the
    command is nak'd and retried; it never creates the ticket from its snapshot nor texts anyone.
    Still absent after max_deliver attempts, the consumer dead-letters it (tests/common/test_bus.py)."""
    ticket = make_ticket()
    idle = Notifier(stack.bus, stack.cfg, load_policy(stack.cfg.policy), stack.clock)
    with pytest.raises(TicketMissing, match="SR-1042 is not stored"):
        await idle.workflow.dispatch(DispatchTicket(id="cmd-x", ticket=ticket))
    relay = RelayClientMessage(id="relay:x", ticket=ticket, request_id="req-2", summary="Still slow.")
    with pytest.raises(TicketMissing, match="SR-1042 is not stored"):
        await idle.workflow.relay(relay)
    assert await stack.bus.kv_get(s.KV_TICKETS, "SR-1042") == (None, 0)
    # Through the consumer: the first delivery fails, the ticket lands, a redelivery dispatches it once.
    command = DispatchTicket(id="cmd-1", ticket=ticket)
    await stack.bus.publish(s.notify_subject("dispatch"), command, msg_id=command.id)

    async def redelivered() -> bool:
        try:
            info = await stack.bus.js.consumer_info(s.STREAM_NOTIFY, "notifier")
        except NotFoundError:
            return False  # the notifier has not created its durable yet
        return (info.num_redelivered or 0) > 0 or (info.num_ack_pending or 0) > 0

    await until(redelivered, what="the command's first delivery refused")
    assert stack.sms() == [] and await stack.bus.kv_get(s.KV_TICKETS, "SR-1042") == (None, 0)
    await TicketStore(stack.bus).create(ticket)
    await stack.until(lambda: len(stack.sms(ALICE)) == 1)
    await stack.settled()
    assert len(stack.sms()) == 1 and (await stored(stack, "SR-1042")).status == "dispatched"
