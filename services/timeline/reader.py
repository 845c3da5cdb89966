"""Read a client's timeline back from the FD_TIMELINE stream, oldest first, and print it for people."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from services.common.bus import Bus
from services.contracts import TimelineEntry
from services.contracts import subjects as s
from services.wording import sanitize, times

_decoder = msgspec.json.Decoder(TimelineEntry)
# ISO 8601 instants that older entries carry in their text ("Queued until 2026-12-01T14:00:00+00:00").
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)")


async def read_timeline(bus: Bus, client_id: str, *, batch: int = 256) -> list[TimelineEntry]:
    """An ephemeral, ack-less consumer over the client's subject: reading never changes state."""
    subject = s.timeline_subject(client_id)
    try:
        info = await bus.js.stream_info(s.STREAM_TIMELINE, subjects_filter=subject)
    except NotFoundError:
        return []  # no service has run against this server yet: nobody has a history

    total = (info.state.subjects or {}).get(subject, 0)
    if total == 0:
        return []
    sub = await bus.js.pull_subscribe(
        subject,
        stream=s.STREAM_TIMELINE,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0
        ),
    )
    entries: list[TimelineEntry] = []
    try:
        while len(entries) < total:
            msgs = await sub.fetch(min(batch, total - len(entries)), timeout=2.0)
            entries.extend(_decoder.decode(m.data) for m in msgs)
    finally:
        await sub.unsubscribe()
    return entries


def _local_instants(text: str, zone: ZoneInfo) -> str:
    """Every ISO instant in a text, written the way every message writes times, in `zone`."""

    def local(match: re.Match[str]) -> str:
        try:
            instant = datetime.fromisoformat(match.group().replace("Z", "+00:00"))
        except ValueError:
            return match.group()
        return times.stamp(instant, zone)

    return _ISO.sub(local, text)


def render(entries: list[TimelineEntry], *, zone: ZoneInfo) -> str:
    """One line per touch: when (in `zone`), ticket, what, who, the text. Everything that came from
    outside is escaped so an email body cannot drive the operator's terminal."""
    lines = []
    for entry in entries:
        ticket = entry.ticket_number or "-"
        who = entry.actor or entry.service
        text = _local_instants(entry.text, zone)
        fields = (times.stamp(entry.at, zone), f"{ticket:<8}", f"{entry.kind:<18}", f"{who:<10}", text)
        lines.append("  ".join(sanitize.printable(field) for field in fields))
    return "\n".join(lines)


def as_json(entries: list[TimelineEntry]) -> str:
    return sanitize.json_printable(msgspec.json.encode(entries).decode())
