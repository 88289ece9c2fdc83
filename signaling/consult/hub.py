"""The desk sockets on this node, and the shop channels that reach them from any node.

Whoever changes a shop's desk publishes the pushes on the shop's desk channel; every node hands
each one to its own sockets: all agents of the shop, one agent (all their consoles), or the
shopper holding a ticket.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Protocol

from vitrine.core.models import Strict
from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus, Subscription

logger = logging.getLogger(__name__)


class Audience(StrEnum):
    AGENTS = "agents"  # every console of the shop
    AGENT = "agent"  # every console of one agent
    TICKET = "ticket"  # the shopper holding one ticket


class DeskPush(Strict):
    to: Audience
    id: str | None = None
    payload: str  # the push, already encoded as the socket sends it


class DeskBusMessage(Strict):
    """One change's pushes, in order: a queue change reaches every console and waiting shopper in one publish."""

    pushes: list[DeskPush]


class DeskSocket(Protocol):
    def push_raw(self, raw: str) -> None: ...


class ConsultHub:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._agents: dict[str, dict[str, set[DeskSocket]]] = {}
        self._shoppers: dict[str, dict[str, DeskSocket]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._subscribing = asyncio.Lock()  # one (un)subscription at a time: never two on a channel

    async def attach_agent(self, shop: str, agent: str, socket: DeskSocket) -> None:
        self._agents.setdefault(shop, {}).setdefault(agent, set()).add(socket)
        await self._subscribe(shop)

    async def detach_agent(self, shop: str, agent: str, socket: DeskSocket) -> None:
        consoles = self._agents.get(shop, {}).get(agent)
        if consoles is not None:
            consoles.discard(socket)
            if not consoles:
                del self._agents[shop][agent]
        await self._unsubscribe_if_idle(shop)

    async def attach_shopper(self, shop: str, ticket: str, socket: DeskSocket) -> None:
        self._shoppers.setdefault(shop, {})[ticket] = socket
        await self._subscribe(shop)

    async def detach_shopper(self, shop: str, ticket: str, socket: DeskSocket) -> None:
        shoppers = self._shoppers.get(shop, {})
        if shoppers.get(ticket) is socket:
            del shoppers[ticket]
        await self._unsubscribe_if_idle(shop)

    def local_consoles(self) -> list[tuple[str, str, int]]:
        """(shop, agent, open consoles) for every agent with a console on this node."""
        return [
            (shop, agent, len(consoles))
            for shop, agents in self._agents.items()
            for agent, consoles in agents.items()
            if consoles
        ]

    def local_shops(self) -> list[str]:
        return list(self._subscriptions)

    def has_shopper(self, shop: str, ticket: str) -> bool:
        return ticket in self._shoppers.get(shop, {})

    async def send(self, shop: str, pushes: list[DeskPush]) -> None:
        if pushes:
            await self.bus.publish(keys.desk_channel(shop), DeskBusMessage(pushes=pushes).model_dump_json())

    async def _subscribe(self, shop: str) -> None:
        async def handler(raw: str, shop: str = shop) -> None:
            self._deliver(shop, DeskBusMessage.model_validate_json(raw))

        async with self._subscribing:
            if shop not in self._subscriptions:
                self._subscriptions[shop] = await self.bus.subscribe(keys.desk_channel(shop), handler)

    async def _unsubscribe_if_idle(self, shop: str) -> None:
        async with self._subscribing:
            if self._agents.get(shop) or self._shoppers.get(shop):
                return
            self._agents.pop(shop, None)
            self._shoppers.pop(shop, None)
            subscription = self._subscriptions.pop(shop, None)
            if subscription is not None:
                await subscription.close()

    def _deliver(self, shop: str, message: DeskBusMessage) -> None:
        for push in message.pushes:
            if push.to == Audience.TICKET:
                shopper = self._shoppers.get(shop, {}).get(push.id or "")
                targets: list[DeskSocket] = [shopper] if shopper else []
            elif push.to == Audience.AGENT:
                targets = list(self._agents.get(shop, {}).get(push.id or "", ()))
            else:
                targets = [s for consoles in self._agents.get(shop, {}).values() for s in consoles]
            for socket in targets:
                socket.push_raw(push.payload)
