"""The router's workflow: a request becomes a ticket, a threaded note, a reopening, or a timeline entry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

import msgspec

from services.common.bus import Transient
from services.common.consumer import Delivery
from services.contracts import (
    AcknowledgeClient,
    Decision,
    DispatchTicket,
    RelayClientMessage,
    RequestAmended,
    ServiceRequest,
    Ticket,
)
from services.contracts import subjects as s
from services.contracts.events import TimelineKind
from services.policy.decide import decide, identify
from services.router import reopen
from services.router import routing as r
from services.router.release import Releases

log = logging.getLogger(__name__)

Incoming = ServiceRequest | RequestAmended
FIRST_TICKET = 1001
_record = msgspec.json.Decoder(r.RequestRecord)


class Router(Releases):
    """Exactly once per request: decide once, store the decision, then publish under derived ids."""

    # -- consuming ------------------------------------------------------------------------------

    async def handle(self, message: Incoming, _: Delivery) -> None:
        if isinstance(message, RequestAmended):
            await self._amended(message)
        else:
            await self._request(message)

    async def _request(self, req: ServiceRequest) -> None:
        record = await self._record(req)
        received = self._timeline(
            r.request_entry("request_received", req, record, key=req.id, text=r.received_text(req))
        )
        if record.outcome == "ticket":
            await self._open(req, record, received)
        elif record.outcome == "threaded":
            await received
            await self._thread(req, record)
        elif record.outcome in ("noted", "reopened"):
            await received
            await self._after_resolution(req, record)
        else:
            await received

    async def _record(self, req: ServiceRequest) -> r.RequestRecord:
        """Decide once per request id and store it before publishing, so a redelivery replays it."""
        key = r.request_key(req.id)
        raw, _ = await self.bus.kv_get(s.KV_ROUTER, key)
        if raw is not None:
            return _record.decode(raw)
        # An unauthenticated sender's address is only a claim: it threads to nothing (token, Message-ID
        # or References alike) and is matched to no client.
        trusted = req.sender_auth.trusted
        postmaster = r.is_postmaster(req)
        threaded = await self._threaded_ticket(req) if trusted and not postmaster else None
        if threaded is None and trusted and req.channel == "sms" and req.nature == "request":
            threaded = await self._resolved_for_phone(req.sender.phone)
        outcome: r.Outcome = "threaded"
        if threaded is not None and threaded.status == "resolved" and req.nature == "request":
            text = req.body or req.full_text or req.subject
            verdict = reopen.after_resolution(threaded, text, req.received_at, self.policy.reopen_window)
            if verdict == "new":
                threaded = None  # past the reopen window: a new ticket
            outcome = "noted" if verdict == "noted" else "reopened"
        if postmaster:
            record = r.RequestRecord(outcome="timeline", client_id=r.POSTMASTER_TIMELINE)
        elif threaded is not None:
            record = r.RequestRecord(
                outcome=outcome, client_id=threaded.client_id, ticket_number=threaded.number
            )
        elif req.nature != "request":
            client = identify(self.policy, email=req.sender.email, phone=req.sender.phone)
            client = client if trusted else None
            record = r.RequestRecord(outcome="timeline", client_id=client.id if client else "unknown")
        else:
            decision = await self._decide(req)
            number = r.ticket_number(await self._next_number())
            record = r.RequestRecord(
                outcome="ticket", client_id=decision.client_id, ticket_number=number, decision=decision
            )
        # Create-if-absent: when two deliveries race, the first stored record wins for both.
        stored = await self.bus.kv_create(s.KV_ROUTER, key, msgspec.json.encode(record))
        return _record.decode(stored)

    async def _decide(self, req: ServiceRequest) -> Decision:
        trusted = req.sender_auth.trusted
        # Nobody may page on-call or claim a client's tier with a forged From.
        emergency = trusted and r.is_emergency(req, self.policy.emergency_keywords)

        def advance(current: bytes | None) -> tuple[bytes | None, Decision]:
            # Pure: a lost race runs it again on the cursor as stored then (GroupedCell).
            cursor = int(current) if current else 0
            decision, after = decide(
                self.policy,
                email=req.sender.email if trusted else None,
                phone=req.sender.phone if trusted else None,
                at=req.received_at,
                emergency=emergency,
                billable=req.billable_accepted and trusted,
                rotation_cursor=cursor,
            )
            unchanged = after == cursor and current is not None
            return None if unchanged else str(after).encode(), (
                decision if trusted else r.unauthenticated(decision, req.sender_auth)
            )

        return await self._cursor.step(advance)

    async def _next_number(self) -> int:
        def bump(current: bytes | None) -> bytes:
            return str((int(current) if current else FIRST_TICKET - 1) + 1).encode()

        stored = await self._numbers.update(bump)
        assert stored is not None
        return int(stored)

    async def _threaded_ticket(self, req: ServiceRequest) -> Ticket | None:
        thread = req.thread
        if thread.ticket_token and thread.token_signed:
            found = await self._ticket(thread.ticket_token)
            if found is not None:
                return found
        ours = r.referenced_ticket(req)
        if ours is not None:
            found = await self._ticket(ours)
            if found is not None:
                return found
        for message_id in r.thread_candidates(req):
            raw, _ = await self.bus.kv_get(s.KV_THREADS, r.thread_key(message_id))
            if raw:
                found = await self._ticket(raw.decode())
                if found is not None:
                    return found
        if thread.ticket_token and not thread.token_signed:
            # A bare token is guessable: honour it only from someone at the ticket's client.
            found = await self._ticket(thread.ticket_token)
            client = identify(self.policy, email=req.sender.email, phone=req.sender.phone)
            if found is not None and client is not None and client.id == found.client_id:
                return found
        return None

    async def _resolved_for_phone(self, phone: str | None) -> Ticket | None:
        """The caller's or texter's latest ticket, when it is resolved (a reply to our DONE text)."""
        if not phone:
            return None
        raw, _ = await self.bus.kv_get(s.KV_ROUTER, reopen.phone_key(phone))
        found = await self._ticket(raw.decode()) if raw else None
        return found if found is not None and found.status == "resolved" else None

    async def _after_resolution(self, req: ServiceRequest, record: r.RequestRecord) -> None:
        """A "thanks" after DONE is only noted; other words within the window reopen the ticket."""
        assert record.ticket_number is not None
        ticket = await self._ticket(record.ticket_number)
        if ticket is None:
            raise Transient(f"ticket {record.ticket_number} vanished")
        if record.outcome == "reopened":
            command = RelayClientMessage(
                id=f"reopen:{req.id}", ticket=ticket, request_id=req.id, summary=r.summary(req), reopen=True
            )
            await self.bus.publish(s.notify_subject("relay_client_message"), command, msg_id=command.id)
            kind: TimelineKind = "reopened"
            text = f"Reopened by the client's reply: {r.summary(req)}"
        else:
            kind, text = (
                "note",
                f"Client replied after it was resolved (noted, no new ticket): {r.summary(req)}",
            )
        await self._timeline(r.request_entry(kind, req, record, key=f"{record.outcome}.{req.id}", text=text))

    async def _open(
        self, req: ServiceRequest, record: r.RequestRecord, received: Coroutine[Any, Any, None]
    ) -> None:
        assert record.ticket_number is not None and record.decision is not None
        number, decision = record.ticket_number, record.decision
        writes: list[Awaitable[Any]] = [received, self.tickets.create(r.open_ticket(number, req, decision))]
        if req.sender.phone:
            # The phone's latest ticket: an SMS reply to our DONE text finds it (services/router/reopen.py).
            writes.append(self._remember_phone(req.sender.phone, number))
        if req.thread.message_id:
            writes.append(
                self.bus.kv_create(s.KV_THREADS, r.thread_key(req.thread.message_id), number.encode())
            )
        # Phase 1: the ticket (and its thread key) are stored, and "received" is on the timeline, before
        # anything refers to them; the three writes are independent, so their round trips overlap.
        ticket: Ticket = (await _all(writes))[1]
        commands: list[Awaitable[Any]] = []
        if req.sender_auth.trusted:
            commands.append(
                self.bus.publish(
                    s.notify_subject("acknowledge_client"),
                    AcknowledgeClient(id=f"ack:{number}", ticket=ticket, request_id=req.id),
                    msg_id=f"ack:{number}",
                )
            )
        else:
            # An acknowledgment would go to whoever the forger named: backscatter. Say why there is none.
            commands.append(self._timeline(r.unacknowledged(req, record)))
        if decision.disposition == "queue":
            timer = msgspec.json.encode(r.ReleaseTimer(ticket_number=number, due=decision.notify_at))
            commands.append(self.bus.kv_create(s.KV_TIMERS, r.timer_key(number), timer))
            kind: TimelineKind = "queued"
        else:
            commands.append(
                self.bus.publish(
                    s.notify_subject("dispatch_ticket"),
                    DispatchTicket(id=f"dispatch:{number}", ticket=ticket),
                    msg_id=f"dispatch:{number}",
                )
            )
            kind = "routed"
        commands.append(
            self._timeline(r.request_entry(kind, req, record, key=number, text=r.routed_text(decision)))
        )
        # Phase 2: every publish carries its Msg-Id, so a failure here redelivers and repeats the
        # phase without doubling anything; waiting for all PubAcks together costs one round trip.
        await _all(commands)
        self.metrics.routing_decisions.labels(decision.disposition).inc()
        self.tickets_opened += 1
        log.info(
            "ticket opened",
            extra={
                "ticket": number,
                "request": req.id,
                "client": decision.client_id,
                "disposition": decision.disposition,
            },
        )

    async def _remember_phone(self, phone: str, number: str) -> None:
        await self.bus.kv_put(s.KV_ROUTER, reopen.phone_key(phone), number.encode())

    async def _thread(self, req: ServiceRequest, record: r.RequestRecord) -> None:
        assert record.ticket_number is not None
        number = record.ticket_number

        def append(current: Ticket | None) -> Ticket | None:
            if current is None or req.id in current.request_ids:
                return None
            return msgspec.structs.replace(current, request_ids=(*current.request_ids, req.id))

        ticket = await self.tickets.update(number, append)
        if ticket is None:
            raise Transient(f"ticket {number} vanished")
        if req.thread.message_id:
            await self.bus.kv_create(s.KV_THREADS, r.thread_key(req.thread.message_id), number.encode())
        if req.nature == "request":
            await self.bus.publish(
                s.notify_subject("relay_client_message"),
                RelayClientMessage(
                    id=f"relay:{req.id}", ticket=ticket, request_id=req.id, summary=r.summary(req)
                ),
                msg_id=f"relay:{req.id}",
            )
        text = f"Threaded to {number} ({req.nature}): {r.summary(req)}"
        await self._timeline(r.request_entry(r.timeline_kind(req), req, record, key=req.id, text=text))

    async def _amended(self, amended: RequestAmended) -> None:
        raw, _ = await self.bus.kv_get(s.KV_ROUTER, r.request_key(amended.request_id))
        if raw is None:
            # The amendment overtook its request: retry later rather than lose it.
            raise Transient(f"request {amended.request_id} not routed yet")
        record = _record.decode(raw)
        parts = [p for p in (amended.transcription, amended.recording_url) if p]
        text = "Amended: " + (" | ".join(parts) or "new content")
        await self._timeline(r.request_entry("request_amended", amended, record, key=amended.id, text=text))
        if amended.transcription and record.ticket_number:
            # The tech hears what the caller said: with the dispatch if it has not gone yet, else now.
            ticket = await self._ticket(record.ticket_number)
            if ticket is None:
                raise Transient(f"ticket {record.ticket_number} not stored yet")
            relay = RelayClientMessage(
                id=f"relay:{amended.id}",
                ticket=ticket,
                request_id=amended.request_id,
                summary="",
                voicemail=amended.transcription,
                recording_url=amended.recording_url or "",
            )
            await self.bus.publish(s.notify_subject("relay_client_message"), relay, msg_id=relay.id)


async def _all(steps: list[Awaitable[Any]]) -> list[Any]:
    """Await independent steps together; if any failed, raise the first failure once all are done.

    Nothing is cancelled halfway: each step is idempotent, and a redelivery repeats them all.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
