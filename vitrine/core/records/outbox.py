"""The webhook outbox: per-shop FIFO of events to deliver, per-room sequence numbers, dead letters.

Events are committed here before any delivery is tried, so an event outlives the process that
emitted it, and a shop's events go out one at a time in the order they were appended (``position``).
An event leaves the outbox when its shop acknowledged it, or when it is dead-lettered after its last
attempt; dead letters are kept as records for the shop to read and replay.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, upsert
from vitrine.core.webhooks import WebhookEvent, WebhookFailure


class WebhookOutbox(Protocol):
    async def append(self, event: WebhookEvent) -> WebhookEvent:
        """Give the event the next ``seq`` of its (shop, room) and queue it last; returns what was stored."""

    async def peek(self, shop_id: str) -> WebhookEvent | None:
        """The shop's next event to deliver (the head), without removing it."""

    async def ack(self, shop_id: str, event_id: str) -> None:
        """Remove the head if it is ``event_id``: a late ack of an event already gone removes nothing."""

    async def pending_shops(self) -> list[str]:
        """Shops with at least one queued event."""

    async def dead_letter(self, shop_id: str, event: WebhookEvent, reason: str) -> None:
        """Record an event that could not be delivered."""

    async def failures(self, shop_id: str, limit: int) -> list[WebhookFailure]:
        """Dead-lettered events, newest first."""


class SqlWebhookOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, event: WebhookEvent) -> WebhookEvent:
        seqs = t.webhook_seqs
        bump = upsert(self._db, seqs).values(shop_id=event.shop, room=event.room, last_seq=1)
        bump = bump.on_conflict_do_update(index_elements=["shop_id", "room"], set_={"last_seq": seqs.c.last_seq + 1})
        async with self._db.transaction() as conn:
            seq = int((await conn.execute(bump.returning(seqs.c.last_seq))).scalar_one())
            stored = event.model_copy(update={"seq": seq}, deep=True)
            await conn.execute(
                t.webhook_events.insert().values(
                    shop_id=event.shop, id=event.id, room=event.room, seq=seq, doc=stored.model_dump(mode="json")
                )
            )
        return stored

    async def peek(self, shop_id: str) -> WebhookEvent | None:
        c = t.webhook_events.c
        query = sa.select(c.doc).where(c.shop_id == shop_id).order_by(c.position).limit(1)
        doc = await self._db.scalar(query)
        return WebhookEvent.model_validate(doc) if doc is not None else None

    async def ack(self, shop_id: str, event_id: str) -> None:
        c = t.webhook_events.c
        head = sa.select(sa.func.min(c.position)).where(c.shop_id == shop_id).scalar_subquery()
        async with self._db.transaction() as conn:
            await conn.execute(
                t.webhook_events.delete().where(c.shop_id == shop_id, c.id == event_id, c.position == head)
            )

    async def pending_shops(self) -> list[str]:
        c = t.webhook_events.c
        return list(await self._db.scalars(sa.select(c.shop_id).distinct().order_by(c.shop_id)))

    async def dead_letter(self, shop_id: str, event: WebhookEvent, reason: str) -> None:
        failure = WebhookFailure(event=event, reason=reason)
        async with self._db.transaction() as conn:
            await conn.execute(
                t.webhook_failures.insert().values(
                    shop_id=shop_id, failed_ms=failure.failed_ms, doc=failure.model_dump(mode="json")
                )
            )

    async def failures(self, shop_id: str, limit: int) -> list[WebhookFailure]:
        if limit <= 0:
            return []
        c = t.webhook_failures.c
        query = sa.select(c.doc).where(c.shop_id == shop_id).order_by(c.position.desc()).limit(limit)
        return [WebhookFailure.model_validate(doc) for doc in await self._db.scalars(query)]
