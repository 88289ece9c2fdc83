"""``PresenceStore``: each consult agent's routing state (available, away, ringing, in a call).

Coordination state: it says what the agents' open consoles are doing now, and is changed only
under the shop's desk lock (``signaling.consult.records``). Memory (embedded) or one Redis HASH per
shop (scaled).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import Field, StringConstraints

from vitrine.core.models import Strict, now_ms
from vitrine.core.shops import AgentId
from vitrine.core.state import keys
from vitrine.core.state.redis_util import RedisClient

TicketId = Annotated[str, StringConstraints(pattern=r"^tk_[A-Za-z0-9_-]{8,40}$")]


class AgentStatus(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"  # set by the desk while ringing or in a call, never by the agent
    WRAP_UP = "wrap_up"  # after a call until the agent files wrap-up notes
    OFFLINE = "offline"  # no console connected


class Presence(Strict):
    """An agent's routing state. ``idle_since_ms`` orders agents: the longest idle is rung first."""

    agent: AgentId
    status: AgentStatus = AgentStatus.OFFLINE
    idle_since_ms: int = Field(default_factory=now_ms)
    ticket: TicketId | None = None  # ringing or in call
    consoles: int = 0  # open console sockets, across nodes
    gone_ms: int | None = None  # when the last console closed during a call; swept after the grace
    away_reason: str | None = None


class PresenceStore(Protocol):
    async def all(self, shop: str) -> dict[str, Presence]:
        """Agent id -> presence, for every agent that has one."""

    async def get(self, shop: str, agent: str) -> Presence | None: ...

    async def put(self, shop: str, presence: Presence) -> None: ...

    async def drop_shop(self, shop: str) -> None: ...


class MemoryPresenceStore:
    def __init__(self) -> None:
        self._shops: dict[str, dict[str, Presence]] = {}

    async def all(self, shop: str) -> dict[str, Presence]:
        return {agent: p.model_copy() for agent, p in self._shops.get(shop, {}).items()}

    async def get(self, shop: str, agent: str) -> Presence | None:
        presence = self._shops.get(shop, {}).get(agent)
        return presence.model_copy() if presence else None

    async def put(self, shop: str, presence: Presence) -> None:
        self._shops.setdefault(shop, {})[presence.agent] = presence.model_copy()

    async def drop_shop(self, shop: str) -> None:
        self._shops.pop(shop, None)


class RedisPresenceStore:
    def __init__(self, client: RedisClient) -> None:
        self._r = client

    async def all(self, shop: str) -> dict[str, Presence]:
        raw = await self._r.hgetall(keys.presence_key(shop))
        return {agent: Presence.model_validate_json(value) for agent, value in raw.items()}

    async def get(self, shop: str, agent: str) -> Presence | None:
        raw = await self._r.hget(keys.presence_key(shop), agent)
        return Presence.model_validate_json(raw) if raw else None

    async def put(self, shop: str, presence: Presence) -> None:
        await self._r.hset(keys.presence_key(shop), presence.agent, presence.model_dump_json())

    async def drop_shop(self, shop: str) -> None:
        await self._r.delete(keys.presence_key(shop))
