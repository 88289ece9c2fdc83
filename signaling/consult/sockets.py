"""The two desk WebSockets: a shopper's (the widget) and an agent's (the console).

Both run on the loop every socket here runs on (``signaling.socket_session``): every frame is
size-checked and parsed against the desk protocol, any failure becomes a typed ``error`` and the loop
goes on, and pushes from the hub go through a bounded outbox, so a socket too slow to drain it is
closed (the client reconnects and resumes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket

from signaling.consult.calls import CallDesk
from signaling.consult.desk import ConsultDesk
from signaling.consult.models import RequestKind, ShopperContext, new_ticket_id
from signaling.consult.protocol import (
    AGENT_TYPES,
    SHOPPER_TYPES,
    AcceptMessage,
    AddToCartMessage,
    BookCallbackMessage,
    CancelMessage,
    ChatMessage,
    DeclineMessage,
    EndCallMessage,
    EnterMessage,
    LeaveMessageMessage,
    LoginMessage,
    NoteMessage,
    PerfMessage,
    RateMessage,
    ResolveRequestMessage,
    ResumeMessage,
    SetStatusMessage,
    ShowProductMessage,
    WrapUpMessage,
    parse_desk_message,
)
from signaling.metrics import METRICS
from signaling.socket_session import SocketSession
from vitrine.core.config import Settings
from vitrine.core.desk_tokens import verify_desk_token
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.records.shops import require_shop
from vitrine.core.shops import ShopFields
from vitrine.core.state.presence import AgentStatus
from vitrine.core.text import TokenBucket
from vitrine.core.wire.rtc import PingMessage, PongMessage, encode

MAX_REQUESTS_PER_SOCKET = 3
CHAT_BURST, CHAT_PER_S = 10, 2.0


class DeskSession(SocketSession):
    """A desk socket on the shared loop (``SocketSession``): it waits ``VITRINE_IDLE_TIMEOUT_S`` for every frame,
    answers ``ping`` and rate-limits chat itself, and hands the rest of its side's messages to ``handle_desk``."""

    allowed: frozenset[str] = frozenset()
    side = ""

    def __init__(self, ws: WebSocket, settings: Settings, desk: ConsultDesk, calls: CallDesk) -> None:
        super().__init__(ws, settings)
        self.desk, self.calls = desk, calls
        self.label = f"{self.side} desk socket"
        self._chat = TokenBucket(CHAT_BURST, CHAT_PER_S)

    def send(self, message: Any) -> None:
        self.push_raw(encode(message))

    async def run(self) -> None:
        METRICS.desk_sockets.labels(side=self.side).inc()
        try:
            await super().run()
        finally:
            METRICS.desk_sockets.labels(side=self.side).dec()

    def parse(self, raw: str | bytes) -> Any:
        return parse_desk_message(raw, self.allowed)

    async def dispatch(self, message: Any) -> None:
        METRICS.signaling_messages.labels(type=f"desk.{message.type}").inc()
        if isinstance(message, PingMessage):
            self.send(PongMessage(ts=message.ts))
        elif isinstance(message, ChatMessage) and not self._chat.take():
            raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many chat messages")
        else:
            await self.handle_desk(message)

    def check_origin(self, shop: ShopFields) -> None:
        if not self.origin_allowed_by(shop):
            raise VitrineError(ErrorCode.ORIGIN_NOT_ALLOWED, f"this page's origin is not allowed by shop {shop.name!r}")

    async def handle_desk(self, message: Any) -> None:
        raise NotImplementedError


class ShopperSession(DeskSession):
    allowed = SHOPPER_TYPES
    side = "shopper"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.shop: str | None = None
        self.ticket: str | None = None  # while queued or in a call
        self.call: str | None = None  # the last call, for the rating and late add-to-cart
        self.context = ShopperContext()
        self.channel = new_ticket_id()  # where this socket's pushes arrive, before and after a ticket
        self._requests_left = MAX_REQUESTS_PER_SOCKET

    async def handle_desk(self, message: Any) -> None:
        if isinstance(message, EnterMessage):
            await self._enter(message)
        elif isinstance(message, ResumeMessage):
            await self._resume(message)
        elif self.shop is None:
            raise VitrineError(ErrorCode.NOT_JOINED, "send enter (or resume) first")
        elif isinstance(message, CancelMessage):
            await self.desk.cancel(self.shop, self._need_ticket())
        elif isinstance(message, ChatMessage):
            await self.calls.chat(self.shop, self._need_ticket(), "shopper", self.context.name, message.text)
        elif isinstance(message, EndCallMessage):
            await self.calls.end(self.shop, self._need_ticket(), "shopper")
        elif isinstance(message, AddToCartMessage | RateMessage | PerfMessage):
            await self._after_answer(message)
        elif isinstance(message, LeaveMessageMessage | BookCallbackMessage):
            await self._request(message)

    def _need_ticket(self) -> str:
        if self.ticket is None:
            raise VitrineError(ErrorCode.TICKET_NOT_FOUND, "not in the queue or a call")
        return self.ticket

    async def _enter(self, message: EnterMessage) -> None:
        if self.ticket is not None:
            raise VitrineError(ErrorCode.ALREADY_JOINED, "already in the queue")
        shop = await require_shop(self.desk.state.records.shops, message.shop)
        self.check_origin(shop)
        context = message.context
        if context.page_url and _origin(context.page_url) not in shop.allowed_origins:
            context = context.model_copy(update={"page_url": None})  # agents may click it: only the shop's pages
        self.shop, self.context = shop.id, context
        await self.desk.hub.attach_shopper(shop.id, self.channel, self)
        ticket = await self.desk.enter(shop.id, self.channel, context, message.intent)
        if ticket is not None:
            self.ticket = self.call = ticket.id

    async def _resume(self, message: ResumeMessage) -> None:
        claims = verify_desk_token(self.settings, message.token, "shopper")
        shop = await require_shop(self.desk.state.records.shops, claims.shop)
        self.check_origin(shop)
        if self.shop is not None and self.channel != claims.sub:
            await self.desk.hub.detach_shopper(self.shop, self.channel, self)
        self.shop, self.channel, self.call = shop.id, claims.sub, claims.sub
        await self.desk.hub.attach_shopper(shop.id, claims.sub, self)
        ticket = await self.desk.resume(shop.id, claims.sub)
        self.ticket = ticket.id if ticket else None
        if ticket is not None:
            self.context = ticket.context

    async def _after_answer(self, message: AddToCartMessage | RateMessage | PerfMessage) -> None:
        assert self.shop is not None
        if self.call is None:
            raise VitrineError(ErrorCode.CALL_NOT_FOUND, "no call yet")
        if isinstance(message, AddToCartMessage):
            await self.calls.add_to_cart(self.shop, self.call, message.sku)
        elif isinstance(message, RateMessage):
            await self.calls.rate(self.shop, self.call, message.stars, message.comment)
        else:
            METRICS.consult_first_frame.observe(message.accept_to_first_frame_ms / 1000)

    async def _request(self, message: LeaveMessageMessage | BookCallbackMessage) -> None:
        assert self.shop is not None
        if self._requests_left <= 0:
            raise VitrineError(ErrorCode.RATE_LIMITED, "enough requests from this page for now")
        self._requests_left -= 1
        if isinstance(message, LeaveMessageMessage):
            await self.calls.leave_request(
                self.shop,
                self.channel,
                self.context,
                kind=RequestKind.MESSAGE,
                name=message.name,
                contact=message.contact,
                text=message.text,
            )
        else:
            await self.calls.leave_request(
                self.shop,
                self.channel,
                self.context,
                kind=RequestKind.CALLBACK,
                name=message.name,
                contact=message.contact,
                text=message.text,
                slot_utc_ms=message.slot_utc_ms,
            )

    async def closed(self) -> None:
        if self.shop is None:
            return
        await self.desk.hub.detach_shopper(self.shop, self.channel, self)
        if self.ticket is not None:
            await self.desk.shopper_gone(self.shop, self.ticket)


class AgentSession(DeskSession):
    allowed = AGENT_TYPES
    side = "agent"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.shop: str | None = None
        self.agent: str | None = None
        self._name: str | None = None

    async def handle_desk(self, message: Any) -> None:
        if isinstance(message, LoginMessage):
            await self._login(message)
            return
        shop, agent = self.shop, self.agent
        if shop is None or agent is None:
            raise VitrineError(ErrorCode.NOT_JOINED, "send login first")
        if isinstance(message, SetStatusMessage):
            await self.desk.set_status(shop, agent, AgentStatus(message.status))
        elif isinstance(message, AcceptMessage):
            await self.desk.accept(shop, agent, message.ticket)
        elif isinstance(message, DeclineMessage):
            await self.desk.decline(shop, agent, message.ticket)
        elif isinstance(message, WrapUpMessage):
            await self.desk.wrap_up(shop, agent, message.ticket, message.notes)
        elif isinstance(message, ChatMessage):
            name = self._name
            await self.calls.chat(shop, await self.calls.agent_call(shop, agent), "agent", name, message.text)
        elif isinstance(message, ShowProductMessage):
            await self.calls.show_product(shop, agent, message.sku)
        elif isinstance(message, NoteMessage):
            await self.calls.note(shop, agent, message.text)
        elif isinstance(message, EndCallMessage):
            await self.calls.end(shop, await self.calls.agent_call(shop, agent), "agent")
        elif isinstance(message, ResolveRequestMessage):
            await self.calls.resolve_request(shop, agent, message.id)

    async def _login(self, message: LoginMessage) -> None:
        if self.agent is not None:
            raise VitrineError(ErrorCode.ALREADY_JOINED, "already logged in")
        claims = verify_desk_token(self.settings, message.token, "agent")
        shop = await require_shop(self.desk.state.records.shops, claims.shop)
        self.check_origin(shop)
        agent = await self.desk.state.records.shops.get_agent(shop.id, claims.sub)
        if agent is None:
            raise VitrineError(ErrorCode.AGENT_NOT_FOUND, "this agent no longer exists")
        self._name = agent.display_name
        await self.desk.hub.attach_agent(shop.id, agent.id, self)
        self.shop, self.agent = shop.id, agent.id
        try:
            await self.desk.agent_online(shop.id, agent.id)
        except BaseException:
            await self.desk.hub.detach_agent(shop.id, agent.id, self)
            self.shop = self.agent = None
            raise

    async def closed(self) -> None:
        if self.shop is None or self.agent is None:
            return
        await self.desk.hub.detach_agent(self.shop, self.agent, self)
        await self.desk.agent_gone(self.shop, self.agent)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
