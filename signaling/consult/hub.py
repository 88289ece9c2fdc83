"""The desk sockets on this node, and the shop channels that reach them from any node.

Whoever changes a shop's desk publishes the pushes on the shop's desk channel; every node hands
each one to its own sockets: all agents of the shop, one agent (all their consoles), or the
shopper holding a ticket. A shop is an audience over ``ChannelHub``: this hub keeps the sockets and
where each push goes, the channel hub keeps the shop's channel subscribed once while any socket listens.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Protocol

from signaling.channels import ChannelHub
from vitrine.core.models import Strict
from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus

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
        self._channels = ChannelHub(bus, keys.desk_channel, self._on_desk_message)

    async def attach_agent(self, shop: str, agent: str, socket: DeskSocket) -> None:
        self._agents.setdefault(shop, {}).setdefault(agent, set()).add(socket)
        await self._channels.join(shop, (Audience.AGENT, agent, socket))

    async def detach_agent(self, shop: str, agent: str, socket: DeskSocket) -> None:
        agents = self._agents.get(shop, {})
        consoles = agents.get(agent)
        if consoles is not None:
            consoles.discard(socket)
            if not consoles:
                del agents[agent]
        if not agents:
            self._agents.pop(shop, None)
        await self._channels.leave(shop, (Audience.AGENT, agent, socket))

    async def attach_shopper(self, shop: str, ticket: str, socket: DeskSocket) -> None:
        """A ticket has one shopper socket: a newer one takes the older one's place (and its count)."""
        self._shoppers.setdefault(shop, {})[ticket] = socket
        await self._channels.join(shop, (Audience.TICKET, ticket))

    async def detach_shopper(self, shop: str, ticket: str, socket: DeskSocket) -> None:
        shoppers = self._shoppers.get(shop, {})
        if shoppers.get(ticket) is not socket:
            return  # replaced by a newer socket, which still listens
        del shoppers[ticket]
        if not shoppers:
            self._shoppers.pop(shop, None)
        await self._channels.leave(shop, (Audience.TICKET, ticket))

    def local_consoles(self) -> list[tuple[str, str, int]]:
        """(shop, agent, open consoles) for every agent with a console on this node."""
        return [
            (shop, agent, len(consoles))
            for shop, agents in self._agents.items()
            for agent, consoles in agents.items()
            if consoles
        ]

    def local_shops(self) -> list[str]:
        return self._channels.subscribed()

    def has_shopper(self, shop: str, ticket: str) -> bool:
        return ticket in self._shoppers.get(shop, {})

    async def send(self, shop: str, pushes: list[DeskPush]) -> None:
        if pushes:
            await self.bus.publish(keys.desk_channel(shop), DeskBusMessage(pushes=pushes).model_dump_json())

    async def _on_desk_message(self, shop: str, raw: str) -> None:
        self._deliver(shop, DeskBusMessage.model_validate_json(raw))

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
