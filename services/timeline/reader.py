"""Read a client's timeline back from the FD_TIMELINE stream, oldest first."""

from __future__ import annotations

import msgspec
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.bus import Bus
from services.contracts import TimelineEntry
from services.contracts import subjects as s

_decoder = msgspec.json.Decoder(TimelineEntry)


async def read_timeline(bus: Bus, client_id: str, *, batch: int = 256) -> list[TimelineEntry]:
    """An ephemeral, ack-less consumer over the client's subject: reading never changes state."""
    subject = s.timeline_subject(client_id)
    info = await bus.js.stream_info(s.STREAM_TIMELINE, subjects_filter=subject)
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


def render(entries: list[TimelineEntry], *, tz: str | None = None) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz) if tz else None
    lines = []
    for entry in entries:
        at = entry.at.astimezone(zone) if zone else entry.at
        ticket = entry.ticket_number or "-"
        stamp = f"{at:%Y-%m-%d %H:%M:%S %Z}"
        lines.append(f"{stamp}  {ticket:<8}  {entry.kind:<18}  {entry.text}  [{entry.service}]")
    return "\n".join(lines)
