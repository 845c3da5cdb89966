"""The router service: turn ServiceRequests into tickets and notifier commands, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

import msgspec
from nats.js.errors import NoKeysError

from services.common.bus import Bus, Consumer, ConsumerSpec, Delivery, Transient
from services.common.clock import Clock, SystemClock
from services.common.http import HttpServer, health_app
from services.common.metrics import Metrics, watch_consumer_lag
from services.contracts import (
    AcknowledgeClient,
    Decision,
    DispatchTicket,
    RelayClientMessage,
    RequestAmended,
    ServiceRequest,
    Ticket,
    TimelineEntry,
)
from services.contracts import subjects as s
from services.contracts.events import TimelineKind
from services.policy.decide import decide, identify
from services.policy.load import PolicyError, load_policy
from services.policy.model import Policy
from services.router import routing as r
from services.router.config import RouterConfig

log = logging.getLogger(__name__)

Incoming = ServiceRequest | RequestAmended


class Router:
    def __init__(self, bus: Bus, policy: Policy, clock: Clock) -> None:
        self.bus = bus
        self.policy = policy
        self.clock = clock
        self.metrics = Metrics()
        self.tickets_opened = 0
        self.released = 0

    # -- consuming ------------------------------------------------------------------------------

    async def handle(self, message: Incoming, _: Delivery) -> None:
        if isinstance(message, RequestAmended):
            await self._amended(message)
        else:
            await self._request(message)

    async def _request(self, req: ServiceRequest) -> None:
        record = await self._record(req)
        sender = req.sender.email or req.sender.phone or "unknown"
        await self._timeline(
            r.entry(
                "request_received",
                key=req.id,
                at=req.received_at,
                client_id=record.client_id,
                text=f"{req.channel} from {sender}: {r.summary(req)}",
                ticket=record.ticket_number,
                request_id=req.id,
            )
        )
        if record.outcome == "ticket":
            await self._open(req, record)
        elif record.outcome == "threaded":
            await self._thread(req, record)

    async def _record(self, req: ServiceRequest) -> r.RequestRecord:
        """Decide once per request id and store it before publishing, so a redelivery replays it."""
        key = r.request_key(req.id)
        raw, _ = await self.bus.kv_get(s.KV_ROUTER, key)
        if raw is not None:
            return msgspec.json.decode(raw, type=r.RequestRecord)
        threaded = await self._threaded_ticket(req)
        if threaded is not None:
            record = r.RequestRecord(
                outcome="threaded", client_id=threaded.client_id, ticket_number=threaded.number
            )
        elif req.nature != "request":
            client = identify(self.policy, email=req.sender.email, phone=req.sender.phone)
            record = r.RequestRecord(outcome="timeline", client_id=client.id if client else "unknown")
        else:
            decision = await self._decide(req)
            number = r.ticket_number(await self.bus.next_number("ticket", start=1001))
            record = r.RequestRecord(
                outcome="ticket", client_id=decision.client_id, ticket_number=number, decision=decision
            )
        encoded = msgspec.json.encode(record)
        # Create-if-absent: when two deliveries race, the first stored record wins for both.
        stored = await self.bus.kv_update(s.KV_ROUTER, key, lambda cur: None if cur is not None else encoded)
        assert stored is not None
        return msgspec.json.decode(stored, type=r.RequestRecord)

    async def _decide(self, req: ServiceRequest) -> Decision:
        holder: list[Decision] = []
        emergency = r.is_emergency(req, self.policy.emergency_keywords)

        def advance(current: bytes | None) -> bytes | None:
            cursor = int(current) if current else 0
            decision, after = decide(
                self.policy,
                email=req.sender.email,
                phone=req.sender.phone,
                at=req.received_at,
                emergency=emergency,
                billable=req.billable_accepted,
                rotation_cursor=cursor,
            )
            holder[:] = [decision]
            return None if after == cursor and current is not None else str(after).encode()

        await self.bus.kv_update(s.KV_ROUTER, r.CURSOR_KEY, advance)
        return holder[0]

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

    async def _ticket(self, number: str) -> Ticket | None:
        raw, _ = await self.bus.kv_get(s.KV_TICKETS, s.kv_key(number))
        return None if raw is None else msgspec.json.decode(raw, type=Ticket)

    async def _open(self, req: ServiceRequest, record: r.RequestRecord) -> None:
        assert record.ticket_number is not None and record.decision is not None
        number, decision = record.ticket_number, record.decision
        fresh = msgspec.json.encode(r.open_ticket(number, req, decision))
        stored = await self.bus.kv_update(s.KV_TICKETS, s.kv_key(number), lambda cur: None if cur else fresh)
        assert stored is not None
        ticket = msgspec.json.decode(stored, type=Ticket)
        if req.thread.message_id:
            await self.bus.kv_update(
                s.KV_THREADS,
                r.thread_key(req.thread.message_id),
                lambda cur: None if cur else number.encode(),
            )
        await self.bus.publish(
            s.notify_subject("acknowledge_client"),
            AcknowledgeClient(id=f"ack:{number}", ticket=ticket, request_id=req.id),
            msg_id=f"ack:{number}",
        )
        self.metrics.routing_decisions.labels(decision.disposition).inc()
        if decision.disposition == "queue":
            timer = msgspec.json.encode(r.ReleaseTimer(ticket_number=number, due=decision.notify_at))
            await self.bus.kv_update(s.KV_TIMERS, r.timer_key(number), lambda cur: None if cur else timer)
            kind: TimelineKind = "queued"
        else:
            await self.bus.publish(
                s.notify_subject("dispatch_ticket"),
                DispatchTicket(id=f"dispatch:{number}", ticket=ticket),
                msg_id=f"dispatch:{number}",
            )
            kind = "routed"
        await self._timeline(
            r.entry(
                kind,
                key=number,
                at=req.received_at,
                client_id=decision.client_id,
                text=r.routed_text(decision),
                ticket=number,
                request_id=req.id,
            )
        )
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

    async def _thread(self, req: ServiceRequest, record: r.RequestRecord) -> None:
        assert record.ticket_number is not None
        number = record.ticket_number

        def append(current: bytes | None) -> bytes | None:
            if current is None:
                return None
            ticket = msgspec.json.decode(current, type=Ticket)
            if req.id in ticket.request_ids:
                return None
            return msgspec.json.encode(
                msgspec.structs.replace(ticket, request_ids=(*ticket.request_ids, req.id))
            )

        stored = await self.bus.kv_update(s.KV_TICKETS, s.kv_key(number), append)
        if stored is None:
            raise Transient(f"ticket {number} vanished")
        ticket = msgspec.json.decode(stored, type=Ticket)
        if req.thread.message_id:
            await self.bus.kv_update(
                s.KV_THREADS,
                r.thread_key(req.thread.message_id),
                lambda cur: None if cur else number.encode(),
            )
        if req.nature == "request":
            await self.bus.publish(
                s.notify_subject("relay_client_message"),
                RelayClientMessage(
                    id=f"relay:{req.id}", ticket=ticket, request_id=req.id, summary=r.summary(req)
                ),
                msg_id=f"relay:{req.id}",
            )
        await self._timeline(
            r.entry(
                r.timeline_kind(req),
                key=req.id,
                at=req.received_at,
                client_id=ticket.client_id,
                text=f"Threaded to {number} ({req.nature}): {r.summary(req)}",
                ticket=number,
                request_id=req.id,
            )
        )

    async def _amended(self, amended: RequestAmended) -> None:
        raw, _ = await self.bus.kv_get(s.KV_ROUTER, r.request_key(amended.request_id))
        if raw is None:
            # The amendment overtook its request: retry later rather than lose it.
            raise Transient(f"request {amended.request_id} not routed yet")
        record = msgspec.json.decode(raw, type=r.RequestRecord)
        parts = [p for p in (amended.transcription, amended.recording_url) if p]
        await self._timeline(
            r.entry(
                "request_amended",
                key=amended.id,
                at=amended.received_at,
                client_id=record.client_id,
                text="Amended: " + (" | ".join(parts) or "new content"),
                ticket=record.ticket_number,
                request_id=amended.request_id,
            )
        )

    async def _timeline(self, item: TimelineEntry) -> None:
        await self.bus.publish(s.timeline_subject(item.client_id), item, msg_id=item.id)

    # -- queued tickets -------------------------------------------------------------------------

    async def release_due(self) -> int:
        """Dispatch every queued ticket whose open time has come, oldest first; returns how many."""
        kv = await self.bus.kv(s.KV_TIMERS)
        try:
            keys = [k for k in await kv.keys() if k.startswith(r.TIMER_PREFIX)]
        except NoKeysError:
            return 0
        timers: list[tuple[str, r.ReleaseTimer]] = []
        for key in keys:
            raw, _ = await self.bus.kv_get(s.KV_TIMERS, key)
            if raw is not None:
                timers.append((key, msgspec.json.decode(raw, type=r.ReleaseTimer)))
        now = self.clock.now()
        fired = 0
        for key, timer in sorted(timers, key=lambda kt: (kt[1].due, kt[1].ticket_number)):
            if timer.due > now:
                break
            ticket = await self._ticket(timer.ticket_number)
            if ticket is not None:
                # Same Msg-Id as an immediate dispatch: two routers firing one timer publish once.
                await self.bus.publish(
                    s.notify_subject("dispatch_ticket"),
                    DispatchTicket(id=f"dispatch:{ticket.number}", ticket=ticket, released_from_queue=True),
                    msg_id=f"dispatch:{ticket.number}",
                )
                await self._timeline(
                    r.entry(
                        "released",
                        key=ticket.number,
                        at=timer.due,
                        client_id=ticket.client_id,
                        text=f"Released from the queue to {ticket.assignee or 'nobody'}.",
                        ticket=ticket.number,
                        request_id=ticket.request_id,
                    )
                )
                self.released += 1
            await kv.delete(key)
            fired += 1
        return fired

    async def next_due(self) -> Any:
        kv = await self.bus.kv(s.KV_TIMERS)
        try:
            keys = [k for k in await kv.keys() if k.startswith(r.TIMER_PREFIX)]
        except NoKeysError:
            self.metrics.timers_pending.set(0)
            return None
        self.metrics.timers_pending.set(len(keys))
        dues = []
        for key in keys:
            raw, _ = await self.bus.kv_get(s.KV_TIMERS, key)
            if raw is not None:
                dues.append(msgspec.json.decode(raw, type=r.ReleaseTimer).due)
        return min(dues, default=None)

    async def run_timers(self, stop: asyncio.Event, poll: float) -> None:
        while not stop.is_set():
            due = None
            try:
                await self.release_due()
                due = await self.next_due()
            except Exception as exc:
                log.warning("release timers failed, will retry", extra={"error": repr(exc)})
            await self.clock.wait(due, poll=poll)


async def watch_policy(router: Router, path: str, stop: asyncio.Event, *, poll: float = 2.0) -> None:
    """Reload the policy on SIGHUP or when the file changes; an invalid file keeps the old policy."""
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    last = _mtime(path)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reload.wait(), poll)
        current = _mtime(path)
        if not reload.is_set() and current == last:
            continue
        reload.clear()
        last = current
        try:
            router.policy = load_policy(path)
        except (PolicyError, OSError) as exc:
            log.error("policy reload refused; keeping the previous policy", extra={"error": str(exc)})
            continue
        log.info("policy reloaded")


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


async def main(cfg: RouterConfig, *, stop: asyncio.Event, clock: Clock | None = None) -> None:
    policy = load_policy(cfg.policy)
    bus = await Bus.connect(cfg.bus, "router", stop=stop)
    http: HttpServer | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        await bus.ensure_topology()
        router = Router(bus, policy, clock or SystemClock())
        decoder = msgspec.json.Decoder(Incoming)
        consumer: Consumer[Incoming] = Consumer(
            bus, ConsumerSpec(s.STREAM_REQUESTS, cfg.durable, s.REQUESTS_ALL), decoder.decode, router.handle
        )
        http = HttpServer(
            health_app(
                lambda: bus.connected,
                lambda: {"tickets_opened": router.tickets_opened, "released": router.released},
                router.metrics.registry,
            ),
            cfg.host,
            cfg.http_port,
        )
        await http.start()
        tasks = [
            asyncio.create_task(consumer.run(stop)),
            asyncio.create_task(router.run_timers(stop, cfg.timer_poll)),
            asyncio.create_task(watch_policy(router, str(cfg.policy), stop)),
            asyncio.create_task(
                watch_consumer_lag(router.metrics, bus, [(s.STREAM_REQUESTS, cfg.durable)], stop)
            ),
        ]
        log.info("router ready", extra={"port": http.port})
        await stop.wait()
    finally:
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, cfg.timer_poll + 5)
        if http is not None:
            await http.stop()
        await bus.close()
