"""Read the dead-letter stream, replay a letter to its original subject, and render letters for a terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import NotFoundError

from services.common.bus import Bus
from services.common.terminal import printable
from services.contracts import subjects as s


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    at: datetime | None
    subject: str  # where it came from, and where a replay sends it
    durable: str
    error: str
    deliveries: str
    data: bytes


async def read(bus: Bus) -> list[DeadLetter]:
    """Every dead letter still stored, oldest first (by direct sequence reads: no consumer is left)."""
    info = await bus.js.stream_info(s.STREAM_DLQ)
    letters: list[DeadLetter] = []
    if not info.state.messages:
        return letters
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await bus.js.get_msg(s.STREAM_DLQ, seq)
        except NotFoundError:
            continue  # replayed (deleted) or expired
        headers = msg.headers or {}
        letters.append(
            DeadLetter(
                seq=seq,
                at=_parse_time(getattr(msg, "time", None)),
                subject=headers.get("Fd-Original-Subject", ""),
                durable=headers.get("Fd-Durable", ""),
                error=headers.get("Fd-Error", ""),
                deliveries=headers.get("Fd-Deliveries", ""),
                data=msg.data or b"",
            )
        )
    return letters


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


async def replay(bus: Bus, letter: DeadLetter) -> None:
    """Publish the letter again to its original subject, then delete it from the dead letters.

    Publish first: a crash in between replays it once more, which the handlers' idempotency (and the
    replay's own Msg-Id within the duplicate window) makes harmless; the other order could lose it.
    """
    if not letter.subject.startswith(f"{s.PREFIX}.") or letter.subject.startswith(f"{s.PREFIX}.dlq."):
        raise ValueError(f"dead letter {letter.seq} has no replayable subject: {printable(letter.subject)!r}")
    await bus.publish_bytes(
        letter.subject,
        letter.data,
        msg_id=f"replay:{letter.seq}",
        headers={"Fd-Replayed-From": str(letter.seq)},
    )
    await bus.js.delete_msg(s.STREAM_DLQ, letter.seq)


def render(letters: list[DeadLetter], *, preview: int = 120) -> str:
    """One line per letter; everything that came from outside is escaped for the terminal."""
    lines = []
    for letter in letters:
        at = letter.at.isoformat(timespec="seconds") if letter.at else "-"
        body = letter.data[:preview].decode("utf-8", "replace")
        lines.append(
            f"{letter.seq:>6}  {at}  {printable(letter.subject)}  durable={printable(letter.durable)}  "
            f"deliveries={printable(letter.deliveries)}\n"
            f"        error: {printable(letter.error)}\n"
            f"        data:  {printable(body)}{'...' if len(letter.data) > preview else ''}"
        )
    return "\n".join(lines)
