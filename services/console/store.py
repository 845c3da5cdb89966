"""The console's read model: timeline events and tickets in an embedded SQLite database.

Writes come only from the projection (idempotent: events by id, tickets by KV revision); pages read.
WAL with synchronous=NORMAL: a commit survives a process crash, and the read model can always be
rebuilt from the stream after a power loss, so fsync on every batch would buy nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from services.contracts.events import TimelineEntry
from services.contracts.tickets import Ticket

SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, at REAL NOT NULL, client_id TEXT NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL, service TEXT NOT NULL, ticket_number TEXT,
  request_id TEXT, actor TEXT);
CREATE INDEX IF NOT EXISTS events_ticket ON events(ticket_number, at);
CREATE INDEX IF NOT EXISTS events_client ON events(client_id, at);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, at);
CREATE TABLE IF NOT EXISTS tickets(
  number TEXT PRIMARY KEY, revision INTEGER NOT NULL, client_id TEXT NOT NULL, client_name TEXT NOT NULL,
  channel TEXT NOT NULL, tier TEXT NOT NULL, priority TEXT NOT NULL, status TEXT NOT NULL,
  assignee TEXT, opened_at REAL NOT NULL, due_at REAL NOT NULL, accepted_at REAL, resolved_at REAL,
  escalation_step INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets(status, due_at);
CREATE INDEX IF NOT EXISTS tickets_opened ON tickets(opened_at);
CREATE INDEX IF NOT EXISTS tickets_client ON tickets(client_id, opened_at);
"""

_ticket = msgspec.json.Decoder(Ticket)
_encode = msgspec.json.Encoder().encode
OPEN = ("queued", "dispatched", "accepted")


def stamp(t: datetime) -> float:
    return t.timestamp()


def instant(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class ReportRow(msgspec.Struct, frozen=True, array_like=True):
    """One ticket as the service report needs it (seconds since the epoch)."""

    number: str
    client_id: str
    client_name: str
    channel: str
    tier: str
    priority: str
    status: str
    assignee: str | None
    opened_at: float
    due_at: float
    accepted_at: float | None
    resolved_at: float | None
    escalation_step: int
    notified_at: float | None
    breach_text: str | None


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- writes (the projection) -----------------------------------------------------------------

    def add_events(self, entries: Iterable[tuple[int, TimelineEntry]]) -> int:
        """Insert a batch in one transaction; an id seen before is ignored. Returns rows added."""
        rows = [
            (
                e.id,
                seq,
                stamp(e.at),
                e.client_id,
                e.kind,
                e.text,
                e.service,
                e.ticket_number,
                e.request_id,
                e.actor,
            )
            for seq, e in entries
        ]
        before = self.db.total_changes
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return self.db.total_changes - before

    def put_tickets(self, tickets: Sequence[tuple[int, Ticket]]) -> None:
        """Upsert by number; an older KV revision never overwrites a newer one."""
        rows = [
            (
                t.number,
                revision,
                t.client_id,
                t.decision.client_name,
                t.channel,
                t.decision.tier,
                t.decision.priority,
                t.status,
                t.assignee,
                stamp(t.opened_at),
                stamp(t.response_due or t.decision.response_due),
                stamp(t.accepted_at) if t.accepted_at else None,
                stamp(t.resolved_at) if t.resolved_at else None,
                t.escalation_step,
                _encode(t),
            )
            for revision, t in tickets
        ]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO tickets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(number) DO UPDATE SET "
                "revision=excluded.revision, client_id=excluded.client_id, client_name=excluded.client_name, "
                "channel=excluded.channel, tier=excluded.tier, priority=excluded.priority, "
                "status=excluded.status, assignee=excluded.assignee, opened_at=excluded.opened_at, "
                "due_at=excluded.due_at, accepted_at=excluded.accepted_at, "
                "resolved_at=excluded.resolved_at, escalation_step=excluded.escalation_step, "
                "body=excluded.body WHERE excluded.revision > tickets.revision",
                rows,
            )

    def drop_ticket(self, number: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM tickets WHERE number = ?", (number,))

    # -- reads (pages and APIs) ------------------------------------------------------------------

    def _tickets(self, sql: str, args: Sequence[Any] = ()) -> list[Ticket]:
        return [_ticket.decode(row[0]) for row in self.db.execute(sql, args)]

    def open_tickets(self) -> list[Ticket]:
        return self._tickets("SELECT body FROM tickets WHERE status IN (?,?,?) ORDER BY due_at, number", OPEN)

    def tickets(self, *, state: str | None = None, limit: int = 500) -> list[Ticket]:
        if state == "open":
            return self.open_tickets()[:limit]
        if state is not None:
            return self._tickets(
                "SELECT body FROM tickets WHERE status = ? ORDER BY opened_at DESC LIMIT ?", (state, limit)
            )
        return self._tickets("SELECT body FROM tickets ORDER BY opened_at DESC LIMIT ?", (limit,))

    def ticket(self, number: str) -> Ticket | None:
        found = self._tickets("SELECT body FROM tickets WHERE number = ?", (number,))
        return found[0] if found else None

    def client_tickets(self, client_id: str, limit: int = 50) -> list[Ticket]:
        return self._tickets(
            "SELECT body FROM tickets WHERE client_id = ? ORDER BY opened_at DESC LIMIT ?",
            (client_id, limit),
        )

    def _events(self, sql: str, args: Sequence[Any]) -> list[TimelineEntry]:
        return [
            TimelineEntry(
                id=r[0],
                at=instant(r[1]),
                client_id=r[2],
                kind=r[3],
                text=r[4],
                service=r[5],
                ticket_number=r[6],
                request_id=r[7],
                actor=r[8],
            )
            for r in self.db.execute(sql, args)
        ]

    _COLUMNS = "id, at, client_id, kind, text, service, ticket_number, request_id, actor"

    def ticket_events(self, number: str) -> list[TimelineEntry]:
        return self._events(
            f"SELECT {self._COLUMNS} FROM events WHERE ticket_number = ? ORDER BY at, seq", (number,)
        )

    def client_events(self, client_id: str, limit: int = 200) -> list[TimelineEntry]:
        newest = self._events(
            f"SELECT {self._COLUMNS} FROM events WHERE client_id = ? ORDER BY at DESC, seq DESC LIMIT ?",
            (client_id, limit),
        )
        return newest[::-1]

    def counts(self) -> tuple[int, int]:
        events = self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        tickets = self.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        return int(events), int(tickets)

    def report_rows(self, start: datetime, end: datetime) -> list[ReportRow]:
        """Tickets opened in [start, end) with their first dispatch SMS and breach text, in one query.

        INDEXED BY: without statistics SQLite may walk the (kind, at) index once per ticket, which took
        minutes over 100,000 events; a ticket has a handful of events, so its own index is always right.
        """
        sql = """
        SELECT t.number, t.client_id, t.client_name, t.channel, t.tier, t.priority, t.status, t.assignee,
               t.opened_at, t.due_at, t.accepted_at, t.resolved_at, t.escalation_step,
               (SELECT MIN(e.at) FROM events e INDEXED BY events_ticket
                WHERE e.ticket_number = t.number AND e.kind = 'tech_notified'),
               (SELECT e.text FROM events e INDEXED BY events_ticket
                WHERE e.ticket_number = t.number AND e.kind = 'breached' LIMIT 1)
        FROM tickets t WHERE t.opened_at >= ? AND t.opened_at < ? ORDER BY t.opened_at
        """
        return [ReportRow(*row) for row in self.db.execute(sql, (stamp(start), stamp(end)))]

    def arrivals(self, start: datetime, end: datetime) -> list[float]:
        """Every request received in [start, end) (new tickets and follow-ups), as epoch seconds."""
        rows = self.db.execute(
            "SELECT at FROM events WHERE kind = 'request_received' AND at >= ? AND at < ?",
            (stamp(start), stamp(end)),
        )
        return [row[0] for row in rows]
