"""``PresenceStore``: each consult agent's routing state (available, away, ringing, in a call).

Coordination state: it says what the agents' open consoles are doing now, and is changed only
under the shop's desk lock (``signaling.consult.records``). Memory (embedded) or one Redis HASH per
shop (scaled).
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from vitrine.consult.models import Presence
from vitrine.state import keys


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
    def __init__(self, client: aioredis.Redis) -> None:
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
