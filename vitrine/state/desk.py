"""``DeskStore``: the consult desk's per-shop collections, in memory (embedded) or Redis (scaled).

Four collections per shop (``Collection``), each a set of JSON records ordered by a score: queue
tickets by entry time, agent presence, call records and contact requests by creation time. The
store is deliberately dumb, with no logic and no locking of its own: ``signaling.consult.desk``
changes a shop's records only while holding the shop's desk lock, so read-modify-write is safe
on both backends. A Redis-backed desk keeps the queue order across restarts.
"""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Protocol

import redis.asyncio as aioredis

from vitrine.state import keys


class Collection(StrEnum):
    TICKETS = "tickets"
    PRESENCE = "presence"
    CALLS = "calls"
    REQUESTS = "requests"
    CASES = "cases"  # inspection cases (signaling.inspect), by creation time
    ERASURES = "erasures"  # erasure requests carried out: counts only, no buyer data


class DeskStore(Protocol):
    async def put(self, shop: str, collection: Collection, record_id: str, raw: str, score: float) -> None:
        """Create or replace a record; ``score`` orders ``scan``."""

    async def get(self, shop: str, collection: Collection, record_id: str) -> str | None: ...

    async def delete(self, shop: str, collection: Collection, record_id: str) -> None: ...

    async def scan(self, shop: str, collection: Collection, *, newest_first: bool = False,
                   limit: int | None = None) -> list[str]:
        """Records by score (ties by id), lowest first unless ``newest_first``."""

    async def count(self, shop: str, collection: Collection) -> int: ...

    async def trim(self, shop: str, collection: Collection, keep: int) -> None:
        """Drop the lowest-scored records beyond the newest ``keep``."""

    async def drop_shop(self, shop: str) -> None:
        """Forget everything the desk holds for a deleted shop."""


class MemoryDeskStore:
    def __init__(self) -> None:
        # (shop, collection) -> id -> (score, raw)
        self._data: dict[tuple[str, Collection], dict[str, tuple[float, str]]] = defaultdict(dict)

    async def put(self, shop: str, collection: Collection, record_id: str, raw: str, score: float) -> None:
        self._data[shop, collection][record_id] = (score, raw)

    async def get(self, shop: str, collection: Collection, record_id: str) -> str | None:
        entry = self._data.get((shop, collection), {}).get(record_id)
        return entry[1] if entry else None

    async def delete(self, shop: str, collection: Collection, record_id: str) -> None:
        self._data.get((shop, collection), {}).pop(record_id, None)

    def _ordered(self, shop: str, collection: Collection) -> list[tuple[str, tuple[float, str]]]:
        return sorted(self._data.get((shop, collection), {}).items(), key=lambda item: (item[1][0], item[0]))

    async def scan(self, shop: str, collection: Collection, *, newest_first: bool = False,
                   limit: int | None = None) -> list[str]:
        ordered = self._ordered(shop, collection)
        if newest_first:
            ordered.reverse()
        return [raw for _, (_, raw) in ordered[:limit]]

    async def count(self, shop: str, collection: Collection) -> int:
        return len(self._data.get((shop, collection), {}))

    async def trim(self, shop: str, collection: Collection, keep: int) -> None:
        ordered = self._ordered(shop, collection)
        for record_id, _ in ordered[:max(0, len(ordered) - keep)]:
            del self._data[shop, collection][record_id]

    async def drop_shop(self, shop: str) -> None:
        for collection in Collection:
            self._data.pop((shop, collection), None)


class RedisDeskStore:
    """A HASH of records and a ZSET of scores per collection, in the shop's ``{shop:<id>}`` slot."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client

    async def put(self, shop: str, collection: Collection, record_id: str, raw: str, score: float) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(keys.desk_records_key(shop, collection), record_id, raw)
            pipe.zadd(keys.desk_order_key(shop, collection), {record_id: score})
            await pipe.execute()

    async def get(self, shop: str, collection: Collection, record_id: str) -> str | None:
        return await self._r.hget(keys.desk_records_key(shop, collection), record_id)

    async def delete(self, shop: str, collection: Collection, record_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.desk_records_key(shop, collection), record_id)
            pipe.zrem(keys.desk_order_key(shop, collection), record_id)
            await pipe.execute()

    async def scan(self, shop: str, collection: Collection, *, newest_first: bool = False,
                   limit: int | None = None) -> list[str]:
        end = -1 if limit is None else limit - 1
        ids = await self._r.zrange(keys.desk_order_key(shop, collection), 0, end, desc=newest_first)
        if not ids:
            return []
        raws = await self._r.hmget(keys.desk_records_key(shop, collection), ids)
        return [raw for raw in raws if raw is not None]

    async def count(self, shop: str, collection: Collection) -> int:
        return int(await self._r.zcard(keys.desk_order_key(shop, collection)))

    async def trim(self, shop: str, collection: Collection, keep: int) -> None:
        order = keys.desk_order_key(shop, collection)
        stale = await self._r.zrange(order, 0, -keep - 1) if keep > 0 else await self._r.zrange(order, 0, -1)
        if stale:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.desk_records_key(shop, collection), *stale)
                pipe.zrem(order, *stale)
                await pipe.execute()

    async def drop_shop(self, shop: str) -> None:
        await self._r.delete(*[key for c in Collection
                               for key in (keys.desk_records_key(shop, c), keys.desk_order_key(shop, c))])
