"""``RoomLog``: a room's ordered chat log, numbered 1, 2, 3... (memory, or a Redis Stream when scaled).

Live selling keeps what viewers said: a late joiner asks for the recent history, and a client that
reconnects asks for everything after the last ``seq`` it saw, so it resumes with no gap and no
duplicate. Numbers are given in one atomic step with the append (a Lua script on Redis: INCR
and XADD with the id ``0-<seq>``), so concurrent writers on any node get one total order.
The newest ``MAX_ENTRIES`` are kept; the log goes with its room.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Protocol

import redis.asyncio as aioredis

from vitrine.protocol import LogEntry
from vitrine.state import keys

MAX_ENTRIES = 1000


class RoomLog(Protocol):
    async def append(self, room: str, entry: LogEntry) -> LogEntry:
        """Store ``entry`` with the room's next ``seq`` (its own ``seq`` is ignored) and return it."""

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` entries with a larger ``seq``, oldest first."""

    async def last_seq(self, room: str) -> int:
        """The newest ``seq`` given in the room, 0 before the first."""

    async def drop(self, room: str) -> None: ...


class MemoryRoomLog:
    def __init__(self) -> None:
        self._entries: dict[str, list[LogEntry]] = defaultdict(list)
        self._seq: dict[str, int] = defaultdict(int)

    async def append(self, room: str, entry: LogEntry) -> LogEntry:
        self._seq[room] += 1
        stored = entry.model_copy(update={"seq": self._seq[room]})
        entries = self._entries[room]
        entries.append(stored)
        del entries[:-MAX_ENTRIES]
        return stored

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        return [e for e in self._entries.get(room, []) if e.seq > seq][:limit]

    async def last_seq(self, room: str) -> int:
        return self._seq.get(room, 0)

    async def drop(self, room: str) -> None:
        self._entries.pop(room, None)
        self._seq.pop(room, None)


# KEYS: stream, seq counter. ARGV: entry JSON without its seq, max entries. Returns the seq given.
_APPEND = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. seq, 'e', ARGV[1])
return seq
"""


class RedisRoomLog:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._append = client.register_script(_APPEND)

    async def append(self, room: str, entry: LogEntry) -> LogEntry:
        raw = entry.model_dump_json(exclude={"seq"})
        seq = int(await self._append(keys=[keys.room_log_key(room), keys.room_log_seq_key(room)],
                                     args=[raw, MAX_ENTRIES]))
        return entry.model_copy(update={"seq": seq})

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        rows = await self._r.xrange(keys.room_log_key(room), min=f"(0-{seq}", max="+", count=limit)
        return [LogEntry.model_validate({**json.loads(fields["e"]), "seq": int(entry_id.split("-")[1])})
                for entry_id, fields in rows]

    async def last_seq(self, room: str) -> int:
        return int(await self._r.get(keys.room_log_seq_key(room)) or 0)

    async def drop(self, room: str) -> None:
        await self._r.delete(keys.room_log_key(room), keys.room_log_seq_key(room))
