"""``RoomLog``: a room's ordered log, numbered 1, 2, 3... and durable before anyone hears of an entry.

Chat lines, and in a live show reactions, pins, deals and moderation, and in an inspection every
action, are entries of one log: a late joiner asks for the recent history, and a client that
reconnects asks for everything after the last ``seq`` it saw, so it resumes with no gap and no
duplicate. The log is committed before the entry is published to the room (``signaling.rooms``), so
a line echoed to its sender survives any crash; a show's log is its replay, an inspection's its
timeline.

An append takes the room's next number from ``room_log_heads`` with one upsert that locks the
room's head row until the transaction commits, so concurrent writers on any node get one total
order. Each append says about how many entries to keep (``MAX_ENTRIES`` for a call's chat, far
more for a show); older ones are cut every ``TRIM_EVERY`` appends. A call's log goes with its room;
a show's stays until the show is deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import sqlalchemy as sa

from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, upsert
from vitrine.core.wire.rtc import LogEntry

MAX_ENTRIES = 1000
SHOW_MAX_ENTRIES = 100_000
INSPECTION_MAX_ENTRIES = 20_000  # an inspection's log is its timeline in the evidence bundle
TRIM_EVERY = 100


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


def _entry(seq: int, doc: dict[str, Any]) -> LogEntry:
    return LogEntry.model_validate({**doc, "seq": seq})


class SqlRoomLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, room: str, entry: LogEntry, keep: int = MAX_ENTRIES) -> LogEntry:
        head = upsert(self._db, t.room_log_heads).values(room=room, last_seq=1)
        head = head.on_conflict_do_update(index_elements=["room"], set_={"last_seq": t.room_log_heads.c.last_seq + 1})
        doc = entry.model_dump(mode="json", exclude={"seq"}, exclude_none=True)
        async with self._db.transaction() as conn:
            seq = int((await conn.execute(head.returning(t.room_log_heads.c.last_seq))).scalar_one())
            await conn.execute(t.room_log.insert().values(room=room, seq=seq, kind=entry.kind, doc=doc))
            if seq % TRIM_EVERY == 0 and seq > keep:
                await conn.execute(t.room_log.delete().where(t.room_log.c.room == room, t.room_log.c.seq <= seq - keep))
        return entry.model_copy(update={"seq": seq})

    async def remove(self, room: str, seq: int) -> LogEntry | None:
        c = t.room_log.c
        async with self._db.transaction() as conn:
            doc = (
                await conn.execute(t.room_log.delete().where(c.room == room, c.seq == seq).returning(c.doc))
            ).scalar_one_or_none()
        return _entry(seq, doc) if doc is not None else None

    async def after(self, room: str, seq: int, limit: int) -> list[LogEntry]:
        c = t.room_log.c
        query = sa.select(c.seq, c.doc).where(c.room == room, c.seq > seq).order_by(c.seq).limit(limit)
        return [_entry(row_seq, doc) for row_seq, doc in await self._db.execute(query)]

    async def last_seq(self, room: str) -> int:
        c = t.room_log_heads.c
        return int(await self._db.scalar(sa.select(c.last_seq).where(c.room == room)) or 0)

    async def drop(self, room: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(t.room_log.delete().where(t.room_log.c.room == room))
            await conn.execute(t.room_log_heads.delete().where(t.room_log_heads.c.room == room))
