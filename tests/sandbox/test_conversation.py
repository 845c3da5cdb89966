"""conversation: the sandbox ledger as conversations per ticket and per phone, names beside numbers."""

from __future__ import annotations

from services.policy.load import load_policy
from services.sandbox.conversation import conversations, directory, events
from tests.e2e.stack import POLICY

JANE, ALICE = "+13125550150", "+13125550101"
RECORD = "<Response><Record/></Response>"
CALL_TWIML = (
    "<Response><Gather><Say>Hello Jane Roe, thank you for calling Northwind IT Services.</Say>"
    "<Say>For an emergency, press 1.</Say></Gather></Response>"
)


def test_ledger_becomes_conversations_newest_first() -> None:
    names = directory(load_policy(POLICY))
    assert names[JANE] == "Jane Roe, Acme Manufacturing" and names[ALICE] == "Alice Nguyen (tech)"
    found = events(
        messages=[
            {"to": ALICE, "body": "SR-1001 Acme Manufacturing (premium)", "status": "delivered",
             "time": "2026-11-23T16:00:02+00:00"},
            {"to": JANE, "body": "Hi Jane, we have your request as ticket SR-1001.", "status": "sent",
             "time": "2026-11-23T16:00:01+00:00"},
        ],
        emails=[],
        webhooks=[
            {"kind": "sms", "time": "2026-11-23T16:00:00+00:00",
             "exchanges": [{"params": {"From": JANE, "Body": "Printer jams"}, "twiml": "<Response/>"}]},
            {"kind": "call", "time": "2026-11-23T17:00:00+00:00",
             "exchanges": [{"params": {"From": JANE}, "twiml": CALL_TWIML},
                           {"params": {"From": JANE, "Digits": "2"}, "twiml": RECORD}]},
        ],
    )  # fmt: skip
    per_ticket, per_party = conversations(found, names)
    [ticket] = per_ticket
    assert ticket.key == "SR-1001"
    assert [(e.direction, e.party) for e in ticket.events] == [("out", ALICE), ("out", JANE)]
    # A call joins the ticket the desk's next message to the caller names.
    answered = events(
        messages=[{"to": JANE, "body": "Hi Jane, we have your request as ticket SR-1002.", "status": "sent",
                   "time": "2026-11-23T17:00:01+00:00"}],
        emails=[],
        webhooks=[{"kind": "call", "time": "2026-11-23T17:00:00+00:00",
                   "exchanges": [{"params": {"From": JANE}, "twiml": CALL_TWIML}]}],
    )  # fmt: skip
    [call_ticket] = conversations(answered, names)[0]
    assert call_ticket.key == "SR-1002" and [e.channel for e in call_ticket.events] == ["sms", "call"]
    assert [c.title for c in per_party] == [
        f"Jane Roe, Acme Manufacturing {JANE}",
        f"Alice Nguyen (tech) {ALICE}",
    ]
    jane = per_party[0].events
    assert [e.channel for e in jane] == ["call", "sms", "sms"]  # newest first: the call, our ack, her text
    assert jane[0].text.splitlines() == [
        "heard: Hello Jane Roe, thank you for calling Northwind IT Services.",
        "heard: For an emergency, press 1.",
        "pressed 2",
        "left a voicemail",
    ]
    assert (jane[2].direction, jane[2].text) == ("in", "Printer jams")
