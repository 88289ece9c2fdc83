"""``LiveStore``: shows, and what a live room keeps beside its log (memory, or Redis when scaled).

Per shop: the show records. Per live room: the ``LiveState`` a joining client draws, the
counters analytics are made of, bans, mutes and the slow-mode gate. Like the desk store it holds
no logic: ``signaling.live`` changes a room's ``LiveState`` only under the room's live lock, and
the counters, bans and the gate are single atomic commands on their own.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Protocol

import redis.asyncio as aioredis

from vitrine.live.models import LiveState, Show
from vitrine.state import keys


class LiveStore(Protocol):
    async def put_show(self, show: Show) -> None: ...

    async def get_show(self, shop: str, show_id: str) -> Show | None: ...

    async def list_shows(self, shop: str, limit: int = 100) -> list[Show]:
        """Newest first."""

    async def delete_show(self, shop: str, show_id: str) -> None:
        """Forget the show and everything its room kept (log included)."""

    async def get_state(self, room: str) -> LiveState | None: ...

    async def put_state(self, room: str, state: LiveState) -> None: ...

    async def count(self, room: str, field: str, amount: int = 1) -> None:
        """Add ``amount`` to one of the room's counters."""

    async def raise_to(self, room: str, field: str, value: int) -> None:
        """Set a counter to ``value`` if that is higher (peak viewers)."""

    async def stats(self, room: str) -> dict[str, int]: ...

    async def set_banned(self, room: str, identity: str, banned: bool) -> None: ...

    async def is_banned(self, room: str, identity: str) -> bool: ...

    async def mute_until(self, room: str, identity: str, until_ms: int | None) -> None:
        """Mute ``identity`` until an epoch ms; ``None`` unmutes."""

    async def muted_until(self, room: str, identity: str) -> int: ...

    async def slow_gate(self, room: str, identity: str, seconds: int) -> bool:
        """True, and close the gate for ``seconds``, if ``identity`` may say something now."""


class MemoryLiveStore:
    def __init__(self) -> None:
        self._shows: dict[str, dict[str, Show]] = defaultdict(dict)
        self._state: dict[str, LiveState] = {}
        self._stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._banned: dict[str, set[str]] = defaultdict(set)
        self._muted: dict[str, dict[str, int]] = defaultdict(dict)
        self._slow: dict[tuple[str, str], float] = {}

    async def put_show(self, show: Show) -> None:
        self._shows[show.shop][show.id] = show.model_copy(deep=True)

    async def get_show(self, shop: str, show_id: str) -> Show | None:
        show = self._shows.get(shop, {}).get(show_id)
        return show.model_copy(deep=True) if show else None

    async def list_shows(self, shop: str, limit: int = 100) -> list[Show]:
        shows = sorted(self._shows.get(shop, {}).values(), key=lambda s: (s.created_at_ms, s.id), reverse=True)
        return [s.model_copy(deep=True) for s in shows[:limit]]

    async def delete_show(self, shop: str, show_id: str) -> None:
        show = self._shows.get(shop, {}).pop(show_id, None)
        if show is not None:
            for table in (self._state, self._stats, self._banned, self._muted):
                table.pop(show.room, None)

    async def get_state(self, room: str) -> LiveState | None:
        state = self._state.get(room)
        return state.model_copy(deep=True) if state else None

    async def put_state(self, room: str, state: LiveState) -> None:
        self._state[room] = state.model_copy(deep=True)

    async def count(self, room: str, field: str, amount: int = 1) -> None:
        self._stats[room][field] += amount

    async def raise_to(self, room: str, field: str, value: int) -> None:
        self._stats[room][field] = max(self._stats[room][field], value)

    async def stats(self, room: str) -> dict[str, int]:
        return dict(self._stats.get(room, {}))

    async def set_banned(self, room: str, identity: str, banned: bool) -> None:
        (self._banned[room].add if banned else self._banned[room].discard)(identity)

    async def is_banned(self, room: str, identity: str) -> bool:
        return identity in self._banned.get(room, ())

    async def mute_until(self, room: str, identity: str, until_ms: int | None) -> None:
        if until_ms is None:
            self._muted[room].pop(identity, None)
        else:
            self._muted[room][identity] = until_ms

    async def muted_until(self, room: str, identity: str) -> int:
        return self._muted.get(room, {}).get(identity, 0)

    async def slow_gate(self, room: str, identity: str, seconds: int) -> bool:
        now = time.monotonic()
        if self._slow.get((room, identity), 0.0) > now:
            return False
        self._slow[room, identity] = now + seconds
        return True


# KEYS: the stats hash. ARGV: field, value. A counter that only ever rises (peak viewers).
_RAISE_TO = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


class RedisLiveStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._raise_to = client.register_script(_RAISE_TO)

    async def put_show(self, show: Show) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(keys.shop_shows_key(show.shop), show.id, show.model_dump_json())
        pipe.zadd(keys.shop_shows_order_key(show.shop), {show.id: show.created_at_ms})
        await pipe.execute()

    async def get_show(self, shop: str, show_id: str) -> Show | None:
        raw = await self._r.hget(keys.shop_shows_key(shop), show_id)
        return Show.model_validate_json(raw) if raw else None

    async def list_shows(self, shop: str, limit: int = 100) -> list[Show]:
        ids = await self._r.zrevrange(keys.shop_shows_order_key(shop), 0, limit - 1)
        if not ids:
            return []
        rows = await self._r.hmget(keys.shop_shows_key(shop), ids)
        return [Show.model_validate_json(raw) for raw in rows if raw]

    async def delete_show(self, shop: str, show_id: str) -> None:
        show = await self.get_show(shop, show_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.hdel(keys.shop_shows_key(shop), show_id)
        pipe.zrem(keys.shop_shows_order_key(shop), show_id)
        await pipe.execute()
        if show is not None:
            await self._r.delete(*keys.live_room_keys(show.room))

    async def get_state(self, room: str) -> LiveState | None:
        raw = await self._r.get(keys.live_state_key(room))
        return LiveState.model_validate_json(raw) if raw else None

    async def put_state(self, room: str, state: LiveState) -> None:
        await self._r.set(keys.live_state_key(room), state.model_dump_json())

    async def count(self, room: str, field: str, amount: int = 1) -> None:
        await self._r.hincrby(keys.live_stats_key(room), field, amount)

    async def raise_to(self, room: str, field: str, value: int) -> None:
        await self._raise_to(keys=[keys.live_stats_key(room)], args=[field, value])

    async def stats(self, room: str) -> dict[str, int]:
        raw = await self._r.hgetall(keys.live_stats_key(room))
        return {field: int(value) for field, value in raw.items()}

    async def set_banned(self, room: str, identity: str, banned: bool) -> None:
        key = keys.live_banned_key(room)
        await (self._r.sadd(key, identity) if banned else self._r.srem(key, identity))

    async def is_banned(self, room: str, identity: str) -> bool:
        return bool(await self._r.sismember(keys.live_banned_key(room), identity))

    async def mute_until(self, room: str, identity: str, until_ms: int | None) -> None:
        key = keys.live_muted_key(room)
        await (self._r.hdel(key, identity) if until_ms is None else self._r.hset(key, identity, until_ms))

    async def muted_until(self, room: str, identity: str) -> int:
        return int(await self._r.hget(keys.live_muted_key(room), identity) or 0)

    async def slow_gate(self, room: str, identity: str, seconds: int) -> bool:
        return bool(await self._r.set(keys.live_slow_key(room, identity), "1", nx=True, px=seconds * 1000))
