"""Words the desk reads on the timeline: why a message opened no ticket."""

from __future__ import annotations

from services.contracts.requests import Nature

IGNORED = {
    "auto_reply": "an automatic reply (Auto-Submitted or a bulk/list header)",
    "out_of_office": "an out-of-office reply",
    "bounce": "a delivery failure report (bounce)",
}


def received_text(channel: str, sender: str, summary: str, nature: Nature) -> str:
    """'email from x: ...' for a request; for anything else, why no ticket was opened."""
    if nature == "request":
        return f"{channel} from {sender}: {summary}"
    return f"{channel} from {sender}, no ticket: {IGNORED.get(nature, nature)}. {summary}"
