"""The queue and its routing: shoppers enter, agents are rung one at a time, one accepts.

Every public method takes the shop's desk lock, reads what it needs, writes, and pushes what
changed (``records``). The sweeper on each node drives the clocks of the shops it has sockets
for: rings that time out, shoppers past the shop's maximum wait, sockets gone past the grace.

A ticket's call room is made at its first ring and kept until the ticket ends. While an agent is
rung, both sides connect to it: the console joins it (alone), and the shopper knocks (``call_ringing``),
so their connection is set up on the worker, kept apart from the room. A ring that passes on takes
only that agent out of the room; the shopper's connection waits on for the next agent. The accept
only admits the shopper's knock (``RoomService.answer_knock``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from signaling.admission import Admission
from signaling.consult.hub import ConsultHub
from signaling.consult.models import CallOutcome, CallRecord, ShopperContext, Ticket, TicketState
from signaling.consult.protocol import (
    CallEnded,
    CallRinging,
    CallSetup,
    CallStarted,
    HistoryPush,
    ProductCard,
    RequestsPush,
    Ring,
    RingCancelled,
    RingEnd,
    ShopStatus,
    StatusPush,
    TicketIssued,
    Welcome,
)
from signaling.consult.records import DeskRecords, WebhookSink, agent_views, close_if_open, utc_ms
from signaling.consult.routing import accepting, is_free, pick_agent
from signaling.consult.store import ConsultStore
from signaling.metrics import METRICS
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.auth import mint_token
from vitrine.core.config import Settings
from vitrine.core.desk_tokens import mint_desk_token
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role, Room, RoomKind, now_ms
from vitrine.core.records.shops import require_shop
from vitrine.core.shops import Agent, Shop, check_product, is_open, next_opening
from vitrine.core.state.presence import AgentStatus, Presence
from vitrine.core.tasks import TaskSet, stop_tasks

logger = logging.getLogger(__name__)

TICKET_TOKEN_TTL_S = 4 * 3600
CALL_TOKEN_TTL_S = 4 * 3600
HISTORY_LIMIT = 30


class ConsultDesk:
    def __init__(
        self,
        settings: Settings,
        state: State,
        rooms: RoomService,
        hub: ConsultHub,
        webhooks: WebhookSink,
        store: ConsultStore,
    ) -> None:
        self.settings = settings
        self.state = state
        self.rooms = rooms
        self.hub = hub
        self.records = DeskRecords(state, hub, webhooks, store)
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = TaskSet()  # standby rooms of rings that were not answered

    async def _shop(self, shop_id: str) -> tuple[Shop, list[Agent]]:
        shop = await require_shop(self.state.records.shops, shop_id)
        return shop, await self.state.records.shops.list_agents(shop_id)

    # -- what the button shows -----------------------------------------------------------

    async def status(self, shop_id: str) -> ShopStatus:
        shop, agents = await self._shop(shop_id)
        presence = await self.records.presence(shop_id)
        queue = [t for t in await self.records.tickets(shop_id) if t.state != TicketState.IN_CALL]
        staffing = await self.records.staffing(shop_id, agents, presence)
        now = datetime.now(UTC)
        open_now = is_open(shop, now)
        opening = next_opening(shop, now)
        return ShopStatus(
            shop=shop.id,
            name=shop.name,
            open=open_now,
            agents_available=staffing.free,
            accepting=open_now and accepting(agents, presence),
            queue_length=len(queue),
            languages=shop.languages,
            wait_s=staffing.wait_s(len(queue) + 1) if open_now else None,
            next_opening_utc_ms=utc_ms(opening) if opening else None,
        )

    # -- shoppers -------------------------------------------------------------------------------

    async def enter(self, shop_id: str, ticket_id: str, context: ShopperContext, intent: str = "call") -> Ticket | None:
        """Queue a shopper whose socket already listens on ``ticket_id``; or tell them why not (None)."""
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            now = datetime.now(UTC)
            presence = await self.records.presence(shop_id)
            why = (
                "closed"
                if not is_open(shop, now)
                else "message"
                if intent == "message"
                else (None if accepting(agents, presence) else "no_answer")
            )
            if why is not None:
                await self.records.to_ticket(shop_id, ticket_id, await self.records.unavailable(why, shop))
                return None
            tickets = await self.records.tickets(shop_id)
            if len(tickets) >= self.settings.consult_max_queue:
                raise VitrineError(ErrorCode.RATE_LIMITED, "the queue is full; try again in a few minutes")
            ticket = Ticket(id=ticket_id, shop=shop_id, context=context)
            async with self.records.unit():
                await self.records.save_ticket(ticket)
                await self.records.hook(shop, "consult.queued", ticket.id, {"context": context.model_dump()})
            token = mint_desk_token(
                self.settings, shop=shop_id, subject=ticket.id, role="shopper", ttl_s=TICKET_TOKEN_TTL_S
            )
            waiting = sum(1 for t in tickets if t.state != TicketState.IN_CALL) + 1
            staffing = await self.records.staffing(shop_id, agents, presence)
            await self.records.to_ticket(
                shop_id,
                ticket.id,
                TicketIssued(ticket=ticket.id, token=token, position=waiting, wait_s=staffing.wait_s(waiting)),
            )
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)
            return ticket

    async def resume(self, shop_id: str, ticket_id: str) -> Ticket | None:
        """The shopper is back (after a network change): keep their place or re-send their call."""
        async with self.records.locked(shop_id):
            ticket = await self.records.ticket(shop_id, ticket_id)
            if ticket is None:
                record = await self.records.call(shop_id, ticket_id)
                if record is not None and record.ended_ms is not None:
                    await self.records.to_ticket(
                        shop_id,
                        ticket_id,
                        CallEnded(call=record.id, ended_by=record.ended_by or "agent", talk_ms=record.talk_ms or 0),
                    )
                    return None
                raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "this queue ticket has expired; please start again")
            ticket.connected, ticket.disconnected_ms = True, None
            await self.records.save_ticket(ticket)
            shop, agents = await self._shop(shop_id)
            if ticket.state == TicketState.IN_CALL and ticket.agent and ticket.room:
                agent = next((a for a in agents if a.id == ticket.agent), None)
                await self.records.to_ticket(
                    shop_id,
                    ticket.id,
                    CallStarted(setup=self._shopper_setup(shop, ticket, agent.display_name if agent else None)),
                )
            else:
                if ticket.state == TicketState.RINGING and ticket.room:  # connect again while it rings
                    knock = CallRinging(setup=self._shopper_knock(shop, ticket))
                    await self.records.to_ticket(shop_id, ticket.id, knock)
                await self.records.publish_queue(shop_id, agents)
            return ticket

    async def shopper_gone(self, shop_id: str, ticket_id: str) -> None:
        async with self.records.locked(shop_id):
            ticket = await self.records.ticket(shop_id, ticket_id)
            if ticket is not None and not self.hub.has_shopper(shop_id, ticket_id):
                ticket.connected, ticket.disconnected_ms = False, now_ms()
                await self.records.save_ticket(ticket)

    async def cancel(self, shop_id: str, ticket_id: str) -> None:
        async with self.records.locked(shop_id):
            ticket = await self.records.ticket(shop_id, ticket_id)
            if ticket is None:
                raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "not in the queue")
            if ticket.state == TicketState.IN_CALL:
                raise VitrineError(ErrorCode.INVALID_MESSAGE, "in a call: send end_call")
            shop, agents = await self._shop(shop_id)
            await self._close_ticket(shop, ticket, CallOutcome.ABANDONED)
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)

    # -- agents -----------------------------------------------------------------------------------

    async def room_record(self, name: str) -> Room | None:
        """A call's room, for ``RoomService.find_room``: it exists from its ticket's first ring to the ticket's end."""
        ticket = await self._ticket_of(name)
        if ticket is None:
            return None
        return Room(name=name, kind=RoomKind.CONSULT, shop=ticket.shop, max_participants=2)

    async def _ticket_of(self, room: str) -> Ticket | None:
        if not room.startswith("consult-"):
            return None
        ticket = await self.records.store.find_ticket("tk_" + room.removeprefix("consult-").rsplit("-", 1)[0])
        return ticket if ticket is not None and ticket.room == room else None

    # -- the call room's door (``ConsultPolicy``) ---------------------------------------------------------

    async def may_enter(self, room: str, identity: str) -> bool:
        """Who may be in a call's room: its shopper, and the agent being rung or in the call. A room that is no
        ticket's (made over REST) is anyone's its grants allow."""
        ticket = await self._ticket_of(room)
        if ticket is None:
            return True
        agent = ticket.ringing_agent if ticket.state == TicketState.RINGING else ticket.agent
        return identity in (shopper_identity(ticket), f"agent-{agent}" if agent else None)

    async def accepted(self, room: str, identity: str) -> bool:
        """The call is accepted and ``identity`` is its shopper: a knock of theirs goes straight in."""
        ticket = await self._ticket_of(room)
        return ticket is not None and ticket.state == TicketState.IN_CALL and identity == shopper_identity(ticket)

    async def _dismiss(self, room: str, *, agent: str | None = None, keep: str | None = None) -> None:
        """Take an agent whose ring passed on (``agent``), or everyone but ``keep``, out of a call's room, so
        nothing of the shopper reaches them."""
        record = await self.state.rooms.get_room(room)
        if record is None:
            return
        for participant in await self.state.rooms.list_participants(room):
            if participant.identity == keep or (agent is not None and participant.identity != f"agent-{agent}"):
                continue
            await self.rooms.kick(room, participant.sid, "the call is not yours any more")
            await self.rooms.leave(Admission(room=record, participant=participant, worker_id=record.worker_id or ""))

    async def rebuild(self) -> None:
        """Coordination state was lost, and presence with it: every console on this node announces itself again
        (and is welcomed again, its status away), and an agent whose call is still a ticket is busy with it."""
        for shop_id, agent_id, consoles in self.hub.local_consoles():
            for _ in range(consoles):
                await self.agent_online(shop_id, agent_id)
            async with self.records.locked(shop_id):
                calls = [
                    t
                    for t in await self.records.tickets(shop_id)
                    if t.agent == agent_id and t.state == TicketState.IN_CALL
                ]
                if calls:
                    presence = await self.records.agent_presence(shop_id, agent_id)
                    presence.status, presence.ticket = AgentStatus.BUSY, calls[0].id
                    await self.records.save_presence(shop_id, presence)
                    await self.records.to_agent(shop_id, agent_id, StatusPush(status=presence.status))

    async def agent_online(self, shop_id: str, agent_id: str) -> None:
        """A console logged in: welcome it with the desk as it is now."""
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            agent = next((a for a in agents if a.id == agent_id), None)
            if agent is None:
                raise VitrineError(ErrorCode.AGENT_NOT_FOUND, "this agent no longer exists")
            presence = await self.records.agent_presence(shop_id, agent_id)
            presence.consoles += 1
            presence.gone_ms = None
            if presence.status == AgentStatus.OFFLINE:
                presence.status = AgentStatus.AWAY
            await self.records.save_presence(shop_id, presence)
            catalog = []
            for product in await self.state.records.shops.list_products(shop_id):
                try:
                    check_product(shop, product)  # the link hosts may have narrowed since it was stored
                except VitrineError:
                    continue
                catalog.append(ProductCard.of(product))
            everyone = await self.records.presence(shop_id)
            await self.records.to_agent(
                shop_id,
                agent_id,
                Welcome(agent=agent_views([agent], everyone)[0], shop=await self.status(shop_id), catalog=catalog),
            )
            await self.records.to_agent(
                shop_id, agent_id, RequestsPush(requests=await self.records.requests(shop_id, 100, open_only=True))
            )
            await self.push_history(shop_id, agent_id)
            await self.records.to_agent(shop_id, agent_id, StatusPush(status=presence.status, ticket=presence.ticket))
            ticket = await self.records.ticket(shop_id, presence.ticket) if presence.ticket else None
            if ticket is not None and ticket.state == TicketState.IN_CALL:
                await self.records.to_agent(
                    shop_id, agent_id, CallStarted(setup=self._agent_setup(shop, ticket, agent), context=ticket.context)
                )
            elif ticket is not None and ticket.state == TicketState.RINGING:
                await self.records.to_agent(shop_id, agent_id, self._ring(shop, ticket, agent))
            await self.records.publish_queue(shop_id, agents)

    async def agent_gone(self, shop_id: str, agent_id: str) -> None:
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            presence = await self.records.agent_presence(shop_id, agent_id)
            presence.consoles = max(0, presence.consoles - 1)
            if presence.consoles == 0:
                ticket = await self.records.ticket(shop_id, presence.ticket) if presence.ticket else None
                if ticket is not None and ticket.state == TicketState.RINGING:
                    await self._pass(shop_id, ticket, presence, RingEnd.CONSOLE_CLOSED)
                if presence.status == AgentStatus.BUSY and presence.ticket:
                    presence.gone_ms = now_ms()  # in a call: the sweeper ends it if they do not come back
                else:
                    presence.status, presence.ticket = AgentStatus.OFFLINE, None
            await self.records.save_presence(shop_id, presence)
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)

    async def set_status(self, shop_id: str, agent_id: str, status: AgentStatus) -> None:
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            presence = await self.records.agent_presence(shop_id, agent_id)
            ticket = await self.records.ticket(shop_id, presence.ticket) if presence.ticket else None
            if presence.status == AgentStatus.WRAP_UP:
                raise VitrineError(ErrorCode.INVALID_MESSAGE, "file the wrap-up of the last call first")
            if ticket is not None and ticket.state == TicketState.IN_CALL:
                raise VitrineError(ErrorCode.INVALID_MESSAGE, "in a call: end it first")
            if ticket is not None and ticket.state == TicketState.RINGING:
                if status == AgentStatus.AVAILABLE:
                    return  # already ringing
                await self._pass(shop_id, ticket, presence, RingEnd.AWAY)
            if status == AgentStatus.AVAILABLE and presence.status != AgentStatus.AVAILABLE:
                presence.idle_since_ms = now_ms()
            presence.status, presence.away_reason = status, None
            await self.records.save_presence(shop_id, presence)
            await self.records.to_agent(shop_id, agent_id, StatusPush(status=status))
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)

    async def accept(self, shop_id: str, agent_id: str, ticket_id: str) -> None:
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            ticket = await self.records.ticket(shop_id, ticket_id)
            if ticket is None or ticket.state != TicketState.RINGING or ticket.ringing_agent != agent_id:
                raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "this call is no longer ringing for you")
            agent = next(a for a in agents if a.id == agent_id)
            now = now_ms()
            room = await self.state.rooms.get_room(ticket.room) if ticket.room else None
            if room is None:  # rung before the room was made at ring time, or closed meanwhile
                room = await self.rooms.create_room(
                    Room(name=f"consult-{ticket.id[3:]}-a", kind=RoomKind.CONSULT, shop=shop_id, max_participants=2)
                )
            else:  # nobody but this agent may be in it when the shopper is let in
                await self._dismiss(room.name, keep=f"agent-{agent_id}")
            ticket.state, ticket.agent, ticket.room, ticket.answered_ms = TicketState.IN_CALL, agent_id, room.name, now
            ticket.ringing_agent = ticket.ring_deadline_ms = None
            async with self.records.unit():
                await self.records.save_ticket(ticket)
                await self.records.save_call(
                    CallRecord(
                        id=ticket.id,
                        shop=shop_id,
                        context=ticket.context,
                        outcome=CallOutcome.ANSWERED,
                        agent=agent_id,
                        room=room.name,
                        queued_ms=ticket.entered_ms,
                        answered_ms=now,
                        wait_ms=now - ticket.entered_ms,
                    )
                )
                await self.records.hook(
                    shop,
                    "consult.answered",
                    ticket.id,
                    {"agent": agent_id, "wait_ms": now - ticket.entered_ms, "room": room.name},
                )
            # The shopper's connection is up since the ring (``call_ringing``): the accept only admits it. A
            # shopper whose knock comes later is let in as it arrives (``accepted``).
            await self.rooms.answer_knock(room.name, shopper_identity(ticket), admit=True)
            presence = await self.records.agent_presence(shop_id, agent_id)
            presence.status, presence.ticket = AgentStatus.BUSY, ticket.id
            await self.records.save_presence(shop_id, presence)
            METRICS.consult_wait.observe((now - ticket.entered_ms) / 1000)
            METRICS.consult_calls.labels(outcome=CallOutcome.ANSWERED.value).inc()
            await self.records.to_agent(shop_id, agent_id, StatusPush(status=AgentStatus.BUSY, ticket=ticket.id))
            await self.records.to_agent(
                shop_id, agent_id, CallStarted(setup=self._agent_setup(shop, ticket, agent), context=ticket.context)
            )
            await self.records.to_ticket(
                shop_id, ticket.id, CallStarted(setup=self._shopper_setup(shop, ticket, agent.display_name))
            )
            await self.records.publish_queue(shop_id, agents)

    async def decline(self, shop_id: str, agent_id: str, ticket_id: str) -> None:
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            ticket = await self.records.ticket(shop_id, ticket_id)
            if ticket is None or ticket.state != TicketState.RINGING or ticket.ringing_agent != agent_id:
                raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "this call is no longer ringing for you")
            presence = await self.records.agent_presence(shop_id, agent_id)
            await self._pass(shop_id, ticket, presence, RingEnd.DECLINED)
            await self.records.save_presence(shop_id, presence)
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)

    async def wrap_up(self, shop_id: str, agent_id: str, call_id: str, notes: str) -> None:
        async with self.records.locked(shop_id):
            shop, agents = await self._shop(shop_id)
            presence = await self.records.agent_presence(shop_id, agent_id)
            record = await self.records.call(shop_id, call_id)
            if record is None or record.agent != agent_id:
                raise VitrineError(ErrorCode.CALL_NOT_FOUND, "no such call of yours")
            record.wrap_up = notes or None
            await self.records.save_call(record)
            if presence.status == AgentStatus.WRAP_UP and presence.ticket == call_id:
                presence.status, presence.ticket, presence.idle_since_ms = AgentStatus.AVAILABLE, None, now_ms()
                await self.records.save_presence(shop_id, presence)
                await self.records.to_agent(shop_id, agent_id, StatusPush(status=AgentStatus.AVAILABLE))
            await self.push_history(shop_id, agent_id)
            await self._dispatch(shop, agents)
            await self.records.publish_queue(shop_id, agents)

    async def push_history(self, shop_id: str, agent_id: str) -> None:
        mine = await self.records.calls(shop_id, HISTORY_LIMIT, agent=agent_id)
        await self.records.to_agent(shop_id, agent_id, HistoryPush(calls=mine))

    # -- routing (under the lock) -----------------------------------------------------------------

    async def _dispatch(self, shop: Shop, agents: list[Agent]) -> None:
        """Ring the best free agent for each waiting ticket, oldest ticket first."""
        presence = await self.records.presence(shop.id)
        if not any(is_free(presence.get(agent.id)) for agent in agents):
            return  # nobody to ring: the queue need not be read
        for ticket in await self.records.tickets(shop.id):
            if ticket.state != TicketState.WAITING:
                continue
            agent = pick_agent(ticket, agents, presence)
            if agent is None:
                continue
            timeout_ms = int(self.settings.consult_ring_timeout_s * 1000)
            # The call's room exists from the first ring: the console joins it (alone) while it rings, and the
            # shopper knocks at it, so an accept finds both sides' media up. It stays for the next ring.
            room = await self.state.rooms.get_room(ticket.room) if ticket.room else None
            if room is None:
                room = Room(
                    name=f"consult-{ticket.id[3:]}-{len(ticket.passed_by) + 1}",
                    kind=RoomKind.CONSULT,
                    shop=shop.id,
                    max_participants=2,
                )
                await self.rooms.create_room(room)
            ticket.state, ticket.ringing_agent, ticket.room = TicketState.RINGING, agent.id, room.name
            ticket.ring_deadline_ms = now_ms() + timeout_ms
            await self.records.save_ticket(ticket)
            chosen = presence[agent.id]
            chosen.status, chosen.ticket = AgentStatus.BUSY, ticket.id
            await self.records.save_presence(shop.id, chosen)
            await self.records.to_agent(shop.id, agent.id, StatusPush(status=AgentStatus.BUSY, ticket=ticket.id))
            await self.records.to_agent(shop.id, agent.id, self._ring(shop, ticket, agent))
            await self.records.to_ticket(shop.id, ticket.id, CallRinging(setup=self._shopper_knock(shop, ticket)))

    def _ring(self, shop: Shop, ticket: Ticket, agent: Agent) -> Ring:
        now = now_ms()
        return Ring(
            ticket=ticket.id,
            context=ticket.context,
            waited_ms=now - ticket.entered_ms,
            timeout_ms=max(0, (ticket.ring_deadline_ms or now) - now),
            setup=self._agent_setup(shop, ticket, agent) if ticket.room else None,
        )

    async def _pass(self, shop_id: str, ticket: Ticket, presence: Presence, reason: RingEnd) -> None:
        """The ringing agent did not take ``ticket``: back to waiting, never rung to them again. They leave the
        call's room; the room, and the shopper's connection waiting at its door, stay for the next ring."""
        if ticket.room:
            self._closing.spawn(self._dismiss(ticket.room, agent=presence.agent))
        ticket.state, ticket.ringing_agent, ticket.ring_deadline_ms = TicketState.WAITING, None, None
        if presence.agent not in ticket.passed_by:
            ticket.passed_by.append(presence.agent)
        await self.records.save_ticket(ticket)
        presence.ticket = None
        if presence.status == AgentStatus.BUSY:
            presence.status = AgentStatus.AVAILABLE
        await self.records.to_agent(shop_id, presence.agent, RingCancelled(ticket=ticket.id, reason=reason))

    async def _close_ticket(self, shop: Shop, ticket: Ticket, outcome: CallOutcome) -> None:
        """A ticket that ends without a call: record it, free a ringing agent, tell the shop."""
        if ticket.state == TicketState.RINGING and ticket.ringing_agent:
            presence = await self.records.agent_presence(shop.id, ticket.ringing_agent)
            reason = RingEnd.MISSED if outcome == CallOutcome.MISSED else RingEnd.ABANDONED
            await self._pass(shop.id, ticket, presence, reason)
            await self.records.save_presence(shop.id, presence)
            await self.records.to_agent(shop.id, presence.agent, StatusPush(status=presence.status))
        if ticket.room:  # the shopper's waiting connection goes with it
            self._closing.spawn(close_if_open(self.rooms, ticket.room))
        now = now_ms()
        kind = "consult.missed" if outcome == CallOutcome.MISSED else "consult.abandoned"
        async with self.records.unit():
            await self.records.finish(
                CallRecord(
                    id=ticket.id,
                    shop=shop.id,
                    context=ticket.context,
                    outcome=outcome,
                    queued_ms=ticket.entered_ms,
                    wait_ms=now - ticket.entered_ms,
                )
            )
            await self.records.hook(shop, kind, ticket.id, {"wait_ms": now - ticket.entered_ms})
        METRICS.consult_calls.labels(outcome=outcome.value).inc()

    # -- call setup ----------------------------------------------------------------------------------

    def _shopper_knock(self, shop: Shop, ticket: Ticket) -> CallSetup:
        """The shopper's setup while it rings: a token that knocks, so their connection is set up at the room's
        door and nothing of it reaches the room before the accept."""
        return self._shopper_setup(shop, ticket, None, knock=True)

    def _shopper_setup(self, shop: Shop, ticket: Ticket, agent_name: str | None, *, knock: bool = False) -> CallSetup:
        token = mint_token(
            self.settings,
            room=ticket.room or "",
            identity=shopper_identity(ticket),
            role=Role.CUSTOMER,
            grants=ROLE_DEFAULT_GRANTS[Role.CUSTOMER].model_copy(update={"needs_admit": knock}),
            ttl_s=CALL_TOKEN_TTL_S,
            name=ticket.context.name,
            shop=shop.id,
        )
        return CallSetup(
            call=ticket.id,
            room=ticket.room or "",
            token=token,
            peer_name=agent_name,
            audio_only=ticket.context.audio_only,
        )

    def _agent_setup(self, shop: Shop, ticket: Ticket, agent: Agent) -> CallSetup:
        token = mint_token(
            self.settings,
            room=ticket.room or "",
            identity=f"agent-{agent.id}",
            role=Role.AGENT,
            ttl_s=CALL_TOKEN_TTL_S,
            name=agent.display_name,
            shop=shop.id,
        )
        return CallSetup(
            call=ticket.id,
            room=ticket.room or "",
            token=token,
            peer_name=ticket.context.name,
            audio_only=ticket.context.audio_only,
        )

    # -- clocks ----------------------------------------------------------------------------------------

    def start(self, end_call: Callable[[str, str, str], Awaitable[None]]) -> None:  # CallDesk.end: avoids a cycle
        self._end_call = end_call
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        await stop_tasks(self._sweeper)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.consult_sweep_s)
            for shop_id in self.hub.local_shops():
                try:
                    await self.sweep(shop_id)
                except Exception:
                    logger.exception("consult sweep of shop %s failed", shop_id)

    async def sweep(self, shop_id: str) -> None:
        """Ring timeouts, maximum waits and vanished sockets of one shop."""
        to_end: list[str] = []
        async with self.records.locked(shop_id):
            shop = await self.state.records.shops.get_shop(shop_id)
            if shop is None:
                return
            agents = await self.state.records.shops.list_agents(shop_id)
            now = now_ms()
            grace_ms = self.settings.consult_reconnect_grace_s * 1000
            changed = False
            for ticket in await self.records.tickets(shop_id):
                if ticket.state == TicketState.IN_CALL:
                    presence = await self.records.agent_presence(shop_id, ticket.agent or "")
                    agent_lost = presence.consoles == 0 and presence.gone_ms and now - presence.gone_ms >= grace_ms
                    shopper_lost = not ticket.connected and now - (ticket.disconnected_ms or now) >= grace_ms
                    if agent_lost or shopper_lost:
                        to_end.append(ticket.id)
                    continue
                if ticket.state == TicketState.RINGING and (ticket.ring_deadline_ms or 0) <= now:
                    presence = await self.records.agent_presence(shop_id, ticket.ringing_agent or "")
                    await self._pass(shop_id, ticket, presence, RingEnd.TIMEOUT)
                    presence.status, presence.away_reason = AgentStatus.AWAY, "missed a call"
                    await self.records.save_presence(shop_id, presence)
                    await self.records.to_agent(
                        shop_id, presence.agent, StatusPush(status=AgentStatus.AWAY, reason="missed a call")
                    )
                    changed = True
                if now - ticket.entered_ms >= shop.max_wait_s * 1000:
                    await self._close_ticket(shop, ticket, CallOutcome.MISSED)
                    await self.records.to_ticket(shop_id, ticket.id, await self.records.unavailable("no_answer", shop))
                    changed = True
                elif not ticket.connected and now - (ticket.disconnected_ms or now) >= grace_ms:
                    await self._close_ticket(shop, ticket, CallOutcome.ABANDONED)
                    changed = True
            if changed:
                await self._dispatch(shop, agents)
                await self.records.publish_queue(shop_id, agents)
        for call_id in to_end:
            await self._end_call(shop_id, call_id, "disconnect")


def shopper_identity(ticket: Ticket) -> str:
    return f"shopper-{ticket.id[3:]}"
