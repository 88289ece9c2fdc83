"""In-call actions and what a call leaves behind: chat, product cards, cart, notes, end, rating,
and the messages and callback bookings shoppers leave when nobody can answer.

Everything said and shown goes into the call's ``CallRecord`` as it happens, under the shop's
desk lock, so the record and the webhooks tell the same story in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from signaling.consult.models import (
    ChatLine,
    ContactRequest,
    ProductShown,
    RequestKind,
    ShopperContext,
    Ticket,
    TicketState,
    new_request_id,
)
from signaling.consult.protocol import (
    CallEnded,
    ChatPush,
    ProductCard,
    ProductPush,
    Rated,
    RequestSaved,
    RequestsPush,
    StatusPush,
)
from signaling.consult.records import DeskRecords, answered, close_if_open
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import now_ms
from vitrine.core.records.shops import require_shop
from vitrine.core.shops import check_product
from vitrine.core.state.presence import AgentStatus
from vitrine.core.text import clean_text

logger = logging.getLogger(__name__)

MAX_CHAT_LINES = 500
MAX_PRODUCTS_SHOWN = 100


class CallDesk:
    def __init__(
        self, state: State, records: DeskRecords, rooms: RoomService, history: Callable[[str, str], Awaitable[None]]
    ) -> None:
        self.state = state
        self.records = records
        self.rooms = rooms
        self._push_history = history  # ConsultDesk.push_history

    async def _live_ticket(self, shop_id: str, call_id: str) -> Ticket:
        ticket = await self.records.ticket(shop_id, call_id)
        if ticket is None or ticket.state != TicketState.IN_CALL:
            raise VitrineError(ErrorCode.CALL_NOT_FOUND, "not in a call")
        return ticket

    async def agent_call(self, shop_id: str, agent_id: str) -> str:
        """The call the agent is in (or wrapping up), for actions that name none."""
        presence = await self.records.agent_presence(shop_id, agent_id)
        ticket = await self.records.ticket(shop_id, presence.ticket) if presence.ticket else None
        if ticket is None or ticket.state != TicketState.IN_CALL or ticket.agent != agent_id:
            raise VitrineError(ErrorCode.CALL_NOT_FOUND, "not in a call")
        return ticket.id

    async def chat(self, shop_id: str, call_id: str, sender: str, name: str | None, text: str) -> None:
        async with self.records.locked(shop_id):
            ticket = await self._live_ticket(shop_id, call_id)
            record = await self.records.require_call(shop_id, call_id)
            if len(record.chat) >= MAX_CHAT_LINES:
                raise VitrineError(ErrorCode.RATE_LIMITED, f"a call keeps at most {MAX_CHAT_LINES} chat lines")
            line = ChatLine(sender=sender, name=name, text=clean_text(text), at_ms=now_ms())
            record.chat.append(line)
            await self.records.save_call(record)
            await self.records.to_ticket(shop_id, ticket.id, ChatPush(line=line))
            await self.records.to_agent(shop_id, ticket.agent or "", ChatPush(line=line))

    async def show_product(self, shop_id: str, agent_id: str, sku: str) -> None:
        async with self.records.locked(shop_id):
            call_id = await self.agent_call(shop_id, agent_id)
            shop = await require_shop(self.state.records.shops, shop_id)
            product = await self.state.records.shops.get_product(shop_id, sku)
            if product is None:
                raise VitrineError(ErrorCode.PRODUCT_NOT_FOUND, f"no product {sku!r} in the catalog")
            check_product(shop, product)  # again: the shop's link hosts may have changed since it was stored
            record = await self.records.require_call(shop_id, call_id)
            if len(record.products_shown) >= MAX_PRODUCTS_SHOWN:
                raise VitrineError(ErrorCode.RATE_LIMITED, f"at most {MAX_PRODUCTS_SHOWN} product cards per call")
            record.products_shown.append(ProductShown(sku=product.sku, title=product.title, at_ms=now_ms()))
            card = ProductCard.of(product)
            async with self.records.unit():
                await self.records.save_call(record)
                await self.records.hook(
                    shop, "consult.product_shown", call_id, {"agent": agent_id, **card.model_dump()}
                )
            await self.records.to_ticket(shop_id, call_id, ProductPush(card=card))
            await self.records.to_agent(shop_id, agent_id, ProductPush(card=card))

    async def add_to_cart(self, shop_id: str, call_id: str, sku: str) -> None:
        """Only a product the agent showed in this call: the shop's cart hook trusts the SKU."""
        async with self.records.locked(shop_id):
            record = await self.records.require_call(shop_id, call_id)
            if not answered(record) or sku not in {p.sku for p in record.products_shown}:
                raise VitrineError(ErrorCode.PERMISSION_DENIED, "only products shown in this call can be added")
            if len(record.added_to_cart) >= MAX_PRODUCTS_SHOWN:
                raise VitrineError(ErrorCode.RATE_LIMITED, "too many add-to-cart events for one call")
            record.added_to_cart.append(sku)
            shop = await require_shop(self.state.records.shops, shop_id)
            product = await self.state.records.shops.get_product(shop_id, sku)
            data = ProductCard.of(product).model_dump() if product else {"sku": sku}
            async with self.records.unit():
                await self.records.save_call(record)
                await self.records.hook(shop, "consult.add_to_cart", call_id, data)

    async def note(self, shop_id: str, agent_id: str, text: str) -> None:
        async with self.records.locked(shop_id):
            presence = await self.records.agent_presence(shop_id, agent_id)
            if not presence.ticket:
                raise VitrineError(ErrorCode.CALL_NOT_FOUND, "not in a call")
            record = await self.records.require_call(shop_id, presence.ticket)
            record.notes = text or None
            await self.records.save_call(record)

    async def end(self, shop_id: str, call_id: str, ended_by: str) -> None:
        """Hang up for both sides; the agent goes to wrap-up, the shopper to the rating."""
        async with self.records.locked(shop_id):
            ticket = await self._live_ticket(shop_id, call_id)
            shop = await require_shop(self.state.records.shops, shop_id)
            record = await self.records.require_call(shop_id, call_id)
            now = now_ms()
            record.ended_ms, record.ended_by = now, ended_by
            record.talk_ms = now - (record.answered_ms or now)
            async with self.records.unit():
                await self.records.finish(record)
                await self.records.hook(
                    shop,
                    "consult.ended",
                    call_id,
                    {
                        "agent": record.agent,
                        "ended_by": ended_by,
                        "wait_ms": record.wait_ms,
                        "talk_ms": record.talk_ms,
                        "products_shown": [p.sku for p in record.products_shown],
                    },
                )
            presence = await self.records.agent_presence(shop_id, ticket.agent or "")
            presence.status = AgentStatus.WRAP_UP if presence.consoles else AgentStatus.OFFLINE
            presence.ticket = call_id if presence.consoles else None
            presence.gone_ms = None
            await self.records.save_presence(shop_id, presence)
            ended = CallEnded(call=call_id, ended_by=ended_by, talk_ms=record.talk_ms)
            await self.records.to_ticket(shop_id, call_id, ended)
            await self.records.to_agent(shop_id, presence.agent, ended)
            await self.records.to_agent(
                shop_id, presence.agent, StatusPush(status=presence.status, ticket=presence.ticket)
            )
            await self._push_history(shop_id, presence.agent)
            await self.records.publish_queue(shop_id, await self.state.records.shops.list_agents(shop_id))
        if record.room:
            await close_if_open(self.rooms, record.room)

    async def rate(self, shop_id: str, call_id: str, stars: int, comment: str | None) -> None:
        async with self.records.locked(shop_id):
            record = await self.records.require_call(shop_id, call_id)
            if not answered(record) or record.ended_ms is None:
                raise VitrineError(ErrorCode.INVALID_MESSAGE, "a call can be rated once it has ended")
            if record.rating is not None:
                raise VitrineError(ErrorCode.INVALID_MESSAGE, "this call is already rated")
            record.rating, record.comment = stars, clean_text(comment) if comment and comment.strip() else None
            shop = await require_shop(self.state.records.shops, shop_id)
            async with self.records.unit():
                await self.records.save_call(record)
                await self.records.hook(
                    shop, "consult.rating", call_id, {"stars": stars, "comment": record.comment, "agent": record.agent}
                )
            await self.records.to_ticket(shop_id, call_id, Rated(call=call_id, stars=stars))
            if record.agent:
                await self._push_history(shop_id, record.agent)

    # -- when nobody can answer -------------------------------------------------------------------

    async def leave_request(
        self,
        shop_id: str,
        reply_to: str,
        context: ShopperContext,
        *,
        kind: RequestKind,
        name: str,
        contact: str,
        text: str | None,
        slot_utc_ms: int | None = None,
    ) -> None:
        """Store a message or a callback booking; ``reply_to`` is the socket's ticket channel."""
        async with self.records.locked(shop_id):
            shop = await require_shop(self.state.records.shops, shop_id)
            if kind == RequestKind.CALLBACK:
                if slot_utc_ms not in await self.records.offered_slots(shop):
                    raise VitrineError(
                        ErrorCode.INVALID_MESSAGE,
                        "slot_utc_ms: not an offered slot (taken, past, or outside opening hours)",
                    )
            request = ContactRequest(
                id=new_request_id(),
                shop=shop_id,
                kind=kind,
                context=context,
                name=name,
                contact=contact,
                text=clean_text(text) if text and text.strip() else None,
                slot_utc_ms=slot_utc_ms,
            )
            async with self.records.unit():  # the request and its event, before the shopper hears "saved"
                await self.records.save_request(request)
                await self.records.hook(shop, "consult.request_created", request.id, request.model_dump(mode="json"))
            await self.records.to_ticket(shop_id, reply_to, RequestSaved(request=request))
            await self.records.to_agents(
                shop_id, RequestsPush(requests=await self.records.requests(shop_id, 100, open_only=True))
            )

    async def resolve_request(self, shop_id: str, agent_id: str, request_id: str) -> None:
        async with self.records.locked(shop_id):
            request = await self.records.request(shop_id, request_id)
            if request is None:
                raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "no such request")
            if request.resolved_ms is None:
                request.resolved_by, request.resolved_ms = agent_id, now_ms()
                await self.records.save_request(request)
            await self.records.to_agents(
                shop_id, RequestsPush(requests=await self.records.requests(shop_id, 100, open_only=True))
            )
