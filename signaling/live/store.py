"""``ShowStore``: live shows, and what a live room keeps beside its log until its show is deleted.

Per shop: the show records (schedule, products, recording, chapters, frozen analytics). Per live
room: the ``LiveState`` a joining client draws (pins, deal, pinned message, slow mode), the counters
analytics are made of, bans and mutes. ``signaling.live`` changes a room's ``LiveState`` only under
the show's lock; counters are single atomic ``UPDATE``s, so every node may add to them at once.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, require_one_row, upsert
from vitrine.core.wire.live import LiveState, Show


class ShowStore(Protocol):
    async def put_show(self, show: Show) -> None: ...

    async def get_show(self, shop: str, show_id: str) -> Show | None: ...

    async def list_shows(
        self, shop: str, limit: int = 100, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Show]:
        """Newest first by creation; the window (``since_ms`` inclusive, ``until_ms`` exclusive) is on
        the scheduled time, or the creation time of a show never scheduled."""

    async def delete_show(self, shop: str, show_id: str) -> Show | None:
        """Forget the show and everything its room kept: state, counters, bans, mutes and its log."""

    async def exists(self, show_id: str) -> bool:
        """Whether any shop has a show of this id (ids are unique across shops): a recording's owner."""

    async def by_room(self, room: str) -> Show | None:
        """The show that owns a live room (each show has its own)."""

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


class SqlShowStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_show(self, show: Show) -> None:
        statement = upsert(self._db, t.shows).values(
            id=show.id,
            shop_id=show.shop,
            room=show.room,
            state=show.state.value,
            created_at_ms=show.created_at_ms,
            scheduled_at_ms=show.scheduled_at_ms,
            doc=show.model_dump(mode="json"),
        )
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={column: statement.excluded[column] for column in ("state", "scheduled_at_ms", "doc")},
            where=t.shows.c.shop_id == statement.excluded.shop_id,
        )
        require_one_row(await self._db.execute(statement), "show", show.id)

    async def get_show(self, shop: str, show_id: str) -> Show | None:
        c = t.shows.c
        doc = await self._db.scalar(sa.select(c.doc).where(c.shop_id == shop, c.id == show_id))
        return Show.model_validate(doc) if doc is not None else None

    async def list_shows(
        self, shop: str, limit: int = 100, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Show]:
        c = t.shows.c
        when = sa.func.coalesce(c.scheduled_at_ms, c.created_at_ms)
        query = sa.select(c.doc).where(c.shop_id == shop)
        if since_ms is not None:
            query = query.where(when >= since_ms)
        if until_ms is not None:
            query = query.where(when < until_ms)
        query = query.order_by(c.created_at_ms.desc(), c.id.desc()).limit(limit)
        return [Show.model_validate(doc) for doc in await self._db.scalars(query)]

    async def delete_show(self, shop: str, show_id: str) -> Show | None:
        c = t.shows.c
        async with self._db.transaction() as conn:
            doc = (
                await conn.execute(t.shows.delete().where(c.shop_id == shop, c.id == show_id).returning(c.doc))
            ).scalar_one_or_none()
            if doc is None:
                return None
            show = Show.model_validate(doc)
            for table in (t.live_states, t.live_counters, t.live_bans, t.live_mutes, t.room_log, t.room_log_heads):
                await conn.execute(table.delete().where(table.c.room == show.room))
        return show

    async def exists(self, show_id: str) -> bool:
        return await self._db.scalar(sa.select(sa.literal(1)).where(t.shows.c.id == show_id)) is not None

    async def by_room(self, room: str) -> Show | None:
        doc = await self._db.scalar(sa.select(t.shows.c.doc).where(t.shows.c.room == room))
        return Show.model_validate(doc) if doc is not None else None

    async def get_state(self, room: str) -> LiveState | None:
        doc = await self._db.scalar(sa.select(t.live_states.c.doc).where(t.live_states.c.room == room))
        return LiveState.model_validate(doc) if doc is not None else None

    async def put_state(self, room: str, state: LiveState) -> None:
        statement = upsert(self._db, t.live_states).values(room=room, doc=state.model_dump(mode="json"))
        statement = statement.on_conflict_do_update(index_elements=["room"], set_={"doc": statement.excluded.doc})
        await self._db.execute(statement)

    async def count(self, room: str, field: str, amount: int = 1) -> None:
        statement = upsert(self._db, t.live_counters).values(room=room, name=field, value=amount)
        statement = statement.on_conflict_do_update(
            index_elements=["room", "name"], set_={"value": t.live_counters.c.value + amount}
        )
        await self._db.execute(statement)

    async def raise_to(self, room: str, field: str, value: int) -> None:
        statement = upsert(self._db, t.live_counters).values(room=room, name=field, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=["room", "name"],
            set_={"value": statement.excluded.value},
            where=t.live_counters.c.value < statement.excluded.value,
        )
        await self._db.execute(statement)

    async def stats(self, room: str) -> dict[str, int]:
        c = t.live_counters.c
        rows = await self._db.execute(sa.select(c.name, c.value).where(c.room == room))
        return {name: int(value) for name, value in rows}

    async def set_banned(self, room: str, identity: str, banned: bool) -> None:
        async with self._db.transaction() as conn:
            if banned:
                await conn.execute(
                    upsert(self._db, t.live_bans)
                    .values(room=room, identity=identity)
                    .on_conflict_do_nothing(index_elements=["room", "identity"])
                )
            else:
                await conn.execute(
                    t.live_bans.delete().where(t.live_bans.c.room == room, t.live_bans.c.identity == identity)
                )

    async def is_banned(self, room: str, identity: str) -> bool:
        c = t.live_bans.c
        return await self._db.scalar(sa.select(sa.literal(1)).where(c.room == room, c.identity == identity)) is not None

    async def mute_until(self, room: str, identity: str, until_ms: int | None) -> None:
        c = t.live_mutes.c
        async with self._db.transaction() as conn:
            if until_ms is None:
                await conn.execute(t.live_mutes.delete().where(c.room == room, c.identity == identity))
                return
            statement = upsert(self._db, t.live_mutes).values(room=room, identity=identity, until_ms=until_ms)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["room", "identity"], set_={"until_ms": statement.excluded.until_ms}
                )
            )

    async def muted_until(self, room: str, identity: str) -> int:
        c = t.live_mutes.c
        return int(await self._db.scalar(sa.select(c.until_ms).where(c.room == room, c.identity == identity)) or 0)
