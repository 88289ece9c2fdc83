"""Typed, locked access to one shop's desk records, and the pushes every change sends.

Every change to a shop's desk happens inside ``locked(shop)``: an in-process lock, then the
shop's desk lock (``vitrine.core.state.locks``, a Redis lock in scaled mode), so two nodes never
interleave a read-modify-write and webhooks leave in the order things happened. Tickets, calls and
requests are records (``signaling.consult.store``); presence is coordination.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from signaling.consult.hub import Audience, ConsultHub, DeskPush
from signaling.consult.models import CallOutcome, CallRecord, ContactRequest, RequestKind, Ticket, TicketState
from signaling.consult.protocol import AgentView, PositionPush, QueueEntryView, QueuePush, Unavailable
from signaling.consult.routing import ONLINE, callback_slots, estimate_wait_s, is_free, typical_talk_s
from signaling.consult.store import ConsultStore
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Strict, now_ms
from vitrine.core.shops import Agent, Shop, next_opening
from vitrine.core.state.locks import NamedLocks
from vitrine.core.state.presence import Presence
from vitrine.core.webhooks import WebhookType
from vitrine.core.wire.rtc import encode

QUEUE_VIEW_LIMIT = 50
TALK_TIME_TTL_S = 5.0
OPEN_CALLBACKS_READ = 1000  # open callback bookings read to count each slot's takers


class WebhookSink(Protocol):
    async def emit(self, shop: Shop, type: WebhookType, room: str, data: dict[str, Any]) -> Any: ...


class DeskRecords:
    def __init__(self, state: State, hub: ConsultHub, webhooks: WebhookSink, store: ConsultStore) -> None:
        self.state = state
        self.hub = hub
        self.webhooks = webhooks
        self.store = store
        self._locks = NamedLocks(state.locks, "the desk is busy; try again")
        self._talk_times: dict[str, tuple[float, float]] = {}  # shop -> (typical talk s, monotonic expiry)

    def locked(self, shop: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.hold(f"desk:{shop}")

    # -- typed records ------------------------------------------------------------------

    async def tickets(self, shop: str) -> list[Ticket]:
        return await self.store.tickets(shop)

    async def ticket(self, shop: str, ticket_id: str) -> Ticket | None:
        return await self.store.ticket(shop, ticket_id)

    async def save_ticket(self, ticket: Ticket) -> None:
        await self.store.save_ticket(ticket)

    async def presence(self, shop: str) -> dict[str, Presence]:
        return await self.state.presence.all(shop)

    async def agent_presence(self, shop: str, agent: str) -> Presence:
        return await self.state.presence.get(shop, agent) or Presence(agent=agent)

    async def save_presence(self, shop: str, presence: Presence) -> None:
        await self.state.presence.put(shop, presence)

    async def call(self, shop: str, call_id: str) -> CallRecord | None:
        return await self.store.call(shop, call_id)

    async def require_call(self, shop: str, call_id: str) -> CallRecord:
        record = await self.call(shop, call_id)
        if record is None:
            raise VitrineError(ErrorCode.CALL_NOT_FOUND, "no such call")
        return record

    async def save_call(self, record: CallRecord) -> None:
        await self.store.save_call(record)

    async def finish(self, record: CallRecord) -> None:
        """The call record, and its ticket gone, in one transaction: a crash leaves one or the other."""
        await self.store.finish(record)
        self._talk_times.pop(record.shop, None)

    async def calls(self, shop: str, limit: int, *, agent: str | None = None) -> list[CallRecord]:
        return await self.store.calls(shop, limit, agent=agent)

    async def request(self, shop: str, request_id: str) -> ContactRequest | None:
        return await self.store.request(shop, request_id)

    async def save_request(self, request: ContactRequest) -> None:
        await self.store.save_request(request)

    async def requests(self, shop: str, limit: int, *, open_only: bool) -> list[ContactRequest]:
        return await self.store.requests(shop, limit, open_only=open_only)

    def unit(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One transaction for a change's records and its webhook (``Database.unit``): both or neither."""
        return self.state.records.db.unit()

    async def hook(self, shop: Shop, kind: str, call_id: str, data: dict[str, Any]) -> None:
        """Queue a webhook, inside the ``unit()`` of the records it tells of; called under the shop's lock, so a
        call's events leave in order, and before the push that acknowledges the change."""
        await self.webhooks.emit(shop, WebhookType(kind), call_id, data)

    async def offered_slots(self, shop: Shop) -> list[int]:
        """Callback slots (UTC ms) with room left: each takes as many bookings as the shop has agents."""
        capacity = max(1, len(await self.state.records.shops.list_agents(shop.id)))
        taken = Counter(
            r.slot_utc_ms
            for r in await self.requests(shop.id, OPEN_CALLBACKS_READ, open_only=True)
            if r.kind == RequestKind.CALLBACK
        )
        slots = [utc_ms(slot) for slot in callback_slots(shop, datetime.now(UTC))]
        return [slot for slot in slots if taken[slot] < capacity]

    async def unavailable(self, kind: str, shop: Shop) -> Unavailable:
        opening = next_opening(shop, datetime.now(UTC))
        return Unavailable(
            type=kind,
            next_opening_utc_ms=utc_ms(opening) if opening else None,
            slots_utc_ms=await self.offered_slots(shop),
        )

    # -- pushes ---------------------------------------------------------------------------

    async def to_ticket(self, shop: str, ticket_id: str, message: Strict) -> None:
        await self.hub.send(shop, [DeskPush(to=Audience.TICKET, id=ticket_id, payload=encode(message))])

    async def to_agent(self, shop: str, agent: str, message: Strict) -> None:
        await self.hub.send(shop, [DeskPush(to=Audience.AGENT, id=agent, payload=encode(message))])

    async def to_agents(self, shop: str, message: Strict) -> None:
        await self.hub.send(shop, [DeskPush(to=Audience.AGENTS, payload=encode(message))])

    async def staffing(self, shop: str, agents: list[Agent], presence: dict[str, Presence]) -> Staffing:
        free = sum(1 for a in agents if is_free(presence.get(a.id)))
        online = sum(1 for a in agents if a.id in presence and presence[a.id].status in ONLINE)
        return Staffing(free=free, online=online, talk_s=await self._talk_s(shop))

    async def _talk_s(self, shop: str) -> float:
        """The typical talk time, read from the recent call records at most every ``TALK_TIME_TTL_S`` on this
        node (and again after a call here ends): every queue change reads it, and it is only an estimate."""
        cached = self._talk_times.get(shop)
        if cached is None or cached[1] < time.monotonic():
            cached = self._talk_times[shop] = (
                typical_talk_s(await self.calls(shop, 20)),
                time.monotonic() + TALK_TIME_TTL_S,
            )
        return cached[0]

    async def publish_queue(self, shop: str, agents: list[Agent]) -> None:
        """Push the queue to every console, and each waiting shopper's own position and wait."""
        tickets = [t for t in await self.tickets(shop) if t.state != TicketState.IN_CALL]
        presence = await self.presence(shop)
        staffing = await self.staffing(shop, agents, presence)
        now = now_ms()
        views = [
            QueueEntryView(
                ticket=t.id, position=i, context=t.context, waited_ms=now - t.entered_ms, ringing_agent=t.ringing_agent
            )
            for i, t in enumerate(tickets, start=1)
        ]
        queue = QueuePush(entries=views[:QUEUE_VIEW_LIMIT], total=len(views), agents=agent_views(agents, presence))
        pushes = [DeskPush(to=Audience.AGENTS, payload=encode(queue))]
        for view, ticket in zip(views, tickets, strict=True):
            position = PositionPush(
                position=view.position,
                wait_s=staffing.wait_s(view.position),
                ringing=ticket.state == TicketState.RINGING,
            )
            pushes.append(DeskPush(to=Audience.TICKET, id=ticket.id, payload=encode(position)))
        await self.hub.send(shop, pushes)  # one publish for the whole queue


@dataclass(frozen=True)
class Staffing:
    """Who can answer now and how long calls last: what every wait estimate reads."""

    free: int
    online: int
    talk_s: float

    def wait_s(self, position: int) -> int | None:
        return estimate_wait_s(position, self.free, self.online, self.talk_s)


async def close_if_open(rooms: RoomService, name: str) -> None:
    """Close a call's room; one that is already gone (everyone left, or closed meanwhile) is fine."""
    try:
        await rooms.close_room(name)
    except VitrineError:
        pass


def utc_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def agent_views(agents: list[Agent], presence: dict[str, Presence]) -> list[AgentView]:
    return [
        AgentView(
            id=a.id,
            display_name=a.display_name,
            languages=a.languages,
            status=presence[a.id].status if a.id in presence else Presence(agent=a.id).status,
        )
        for a in agents
    ]


def answered(record: CallRecord) -> bool:
    return record.outcome == CallOutcome.ANSWERED
