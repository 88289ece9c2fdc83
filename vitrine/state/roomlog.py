"""``RoomLog``: a room's ordered log, numbered 1, 2, 3... (memory, or a Redis Stream when scaled).

Chat lines, and in a live show reactions, pins, deals and moderation, are entries of one log: a
late joiner asks for the recent history, and a client that reconnects asks for everything after
the last ``seq`` it saw, so it resumes with no gap and no duplicate. Numbers are given in one
atomic step with the append (a Lua script on Redis: INCR and XADD with the id ``0-<seq>``), so
concurrent writers on any node get one total order. Each append says how many entries to keep
(``MAX_ENTRIES`` for a call's chat, far more for a show, whose log becomes its replay). A call's
log goes with its room; a show's stays until the show is deleted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis

from vitrine.protocol import LogEntry
from vitrine.state import keys

MAX_ENTRIES = 1000
SHOW_MAX_ENTRIES = 100_000
INSPECTION_MAX_ENTRIES = 20_000  # an inspection's log is its timeline in the evidence bundle


class RoomLog(Protocol):
    async def append(self, room: str, entry: LogEntry, keep: int = MAX_ENTRIES) -> LogEntry:
        """Store ``entry`` with the room's next ``seq`` (its own ``seq`` is ignored) and return it;
        keep about the newest ``keep``."""

    async def remove(self, room: str, seq: int) -> LogEntry | None:
        """Take one entry out (a moderator deleted it), so no later reader sees it."""

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` entries with a larger ``seq``, oldest first."""

    async def last_seq(self, room: str) -> int:
        """The newest ``seq`` given in the room, 0 before the first."""

    async def drop(self, room: str) -> None: ...


async def whole_log(log: RoomLog, room: str) -> AsyncIterator[LogEntry]:
    """A room's whole log, oldest first, a page at a time (a replay's chapters, an inspection's timeline)."""
    after = 0
    while page := await log.after(room, after, 1000):
        for entry in page:
            yield entry
        after = page[-1].seq


class MemoryRoomLog:
    def __init__(self) -> None:
        self._entries: dict[str, list[LogEntry]] = defaultdict(list)
        self._seq: dict[str, int] = defaultdict(int)

    async def append(self, room: str, entry: LogEntry, keep: int = MAX_ENTRIES) -> LogEntry:
        self._seq[room] += 1
        stored = entry.model_copy(update={"seq": self._seq[room]})
        entries = self._entries[room]
        entries.append(stored)
        del entries[:-keep]
        return stored

    async def remove(self, room: str, seq: int) -> LogEntry | None:
        entries = self._entries.get(room, [])
        for index, entry in enumerate(entries):
            if entry.seq == seq:
                return entries.pop(index)
        return None

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

    async def append(self, room: str, entry: LogEntry, keep: int = MAX_ENTRIES) -> LogEntry:
        raw = entry.model_dump_json(exclude={"seq"}, exclude_none=True)
        seq = int(await self._append(keys=[keys.room_log_key(room), keys.room_log_seq_key(room)],
                                     args=[raw, keep]))
        return entry.model_copy(update={"seq": seq})

    async def remove(self, room: str, seq: int) -> LogEntry | None:
        key = keys.room_log_key(room)
        rows = await self._r.xrange(key, min=f"0-{seq}", max=f"0-{seq}", count=1)
        if not rows or not await self._r.xdel(key, f"0-{seq}"):
            return None
        return _parse(rows[0])

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        rows = await self._r.xrange(keys.room_log_key(room), min=f"(0-{seq}", max="+", count=limit)
        return [_parse(row) for row in rows]

    async def last_seq(self, room: str) -> int:
        return int(await self._r.get(keys.room_log_seq_key(room)) or 0)

    async def drop(self, room: str) -> None:
        await self._r.delete(keys.room_log_key(room), keys.room_log_seq_key(room))


def _parse(row: tuple[str, dict[str, str]]) -> LogEntry:
    entry_id, fields = row
    return LogEntry.model_validate({**json.loads(fields["e"]), "seq": int(entry_id.split("-")[1])})
