"""``ConsultStore``: the consult desk's records. Queue tickets, call records and contact requests.

A ticket is a shopper's place in the queue (or in a call); when the contact ends it becomes a call
record, kept for the shop's reports and appeals. Records are never trimmed here: retention is the
shop's decision. The desk changes a shop's records only under the shop's desk lock
(``signaling.consult.records``), so read-modify-write needs no locking of its own here.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from signaling.consult.models import CallRecord, ContactRequest, Ticket
from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, require_one_row, upsert


class ConsultStore(Protocol):
    async def tickets(self, shop: str) -> list[Ticket]:
        """The shop's tickets in queue order (entry time, then id)."""

    async def ticket(self, shop: str, ticket_id: str) -> Ticket | None: ...

    async def save_ticket(self, ticket: Ticket) -> None: ...

    async def find_ticket(self, ticket_id: str) -> Ticket | None:
        """A ticket by id alone, for what names only the ticket (its call's room)."""

    async def call(self, shop: str, call_id: str) -> CallRecord | None: ...

    async def save_call(self, record: CallRecord) -> None: ...

    async def finish(self, record: CallRecord) -> None:
        """Store the call record and drop its ticket, in one transaction."""

    async def calls(
        self,
        shop: str,
        limit: int,
        *,
        agent: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[CallRecord]:
        """Newest first by queue time; ``since_ms`` inclusive, ``until_ms`` exclusive."""

    async def request(self, shop: str, request_id: str) -> ContactRequest | None: ...

    async def save_request(self, request: ContactRequest) -> None: ...

    async def requests(self, shop: str, limit: int, *, open_only: bool) -> list[ContactRequest]:
        """Newest first; ``open_only`` leaves out the resolved ones."""


class SqlConsultStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def tickets(self, shop: str) -> list[Ticket]:
        query = (
            sa.select(t.tickets.c.doc)
            .where(t.tickets.c.shop_id == shop)
            .order_by(t.tickets.c.entered_ms, t.tickets.c.id)
        )
        return [Ticket.model_validate(doc) for doc in await self._db.scalars(query)]

    async def ticket(self, shop: str, ticket_id: str) -> Ticket | None:
        query = sa.select(t.tickets.c.doc).where(t.tickets.c.shop_id == shop, t.tickets.c.id == ticket_id)
        doc = await self._db.scalar(query)
        return Ticket.model_validate(doc) if doc is not None else None

    async def find_ticket(self, ticket_id: str) -> Ticket | None:
        doc = await self._db.scalar(sa.select(t.tickets.c.doc).where(t.tickets.c.id == ticket_id))
        return Ticket.model_validate(doc) if doc is not None else None

    async def save_ticket(self, ticket: Ticket) -> None:
        statement = upsert(self._db, t.tickets).values(
            id=ticket.id, shop_id=ticket.shop, entered_ms=ticket.entered_ms, doc=ticket.model_dump(mode="json")
        )
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={"entered_ms": statement.excluded.entered_ms, "doc": statement.excluded.doc},
            where=t.tickets.c.shop_id == statement.excluded.shop_id,
        )
        require_one_row(await self._db.execute(statement), "ticket", ticket.id)

    async def call(self, shop: str, call_id: str) -> CallRecord | None:
        query = sa.select(t.call_records.c.doc).where(t.call_records.c.shop_id == shop, t.call_records.c.id == call_id)
        doc = await self._db.scalar(query)
        return CallRecord.model_validate(doc) if doc is not None else None

    def _call_upsert(self, record: CallRecord) -> sa.Executable:
        statement = upsert(self._db, t.call_records).values(
            id=record.id,
            shop_id=record.shop,
            queued_ms=record.queued_ms,
            agent=record.agent,
            outcome=record.outcome.value,
            doc=record.model_dump(mode="json"),
        )
        return statement.on_conflict_do_update(
            index_elements=["id"],
            set_={column: statement.excluded[column] for column in ("queued_ms", "agent", "outcome", "doc")},
            where=t.call_records.c.shop_id == statement.excluded.shop_id,
        )

    async def save_call(self, record: CallRecord) -> None:
        require_one_row(await self._db.execute(self._call_upsert(record)), "call", record.id)

    async def finish(self, record: CallRecord) -> None:
        async with self._db.transaction() as conn:
            require_one_row(await conn.execute(self._call_upsert(record)), "call", record.id)
            await conn.execute(
                t.tickets.delete().where(t.tickets.c.shop_id == record.shop, t.tickets.c.id == record.id)
            )

    async def calls(
        self,
        shop: str,
        limit: int,
        *,
        agent: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[CallRecord]:
        c = t.call_records.c
        query = sa.select(c.doc).where(c.shop_id == shop)
        if agent is not None:
            query = query.where(c.agent == agent)
        if since_ms is not None:
            query = query.where(c.queued_ms >= since_ms)
        if until_ms is not None:
            query = query.where(c.queued_ms < until_ms)
        query = query.order_by(c.queued_ms.desc(), c.id.desc()).limit(limit)
        return [CallRecord.model_validate(doc) for doc in await self._db.scalars(query)]

    async def request(self, shop: str, request_id: str) -> ContactRequest | None:
        c = t.contact_requests.c
        doc = await self._db.scalar(sa.select(c.doc).where(c.shop_id == shop, c.id == request_id))
        return ContactRequest.model_validate(doc) if doc is not None else None

    async def save_request(self, request: ContactRequest) -> None:
        statement = upsert(self._db, t.contact_requests).values(
            id=request.id,
            shop_id=request.shop,
            created_ms=request.created_ms,
            kind=request.kind.value,
            resolved_ms=request.resolved_ms,
            doc=request.model_dump(mode="json"),
        )
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={"resolved_ms": statement.excluded.resolved_ms, "doc": statement.excluded.doc},
            where=t.contact_requests.c.shop_id == statement.excluded.shop_id,
        )
        require_one_row(await self._db.execute(statement), "request", request.id)

    async def requests(self, shop: str, limit: int, *, open_only: bool) -> list[ContactRequest]:
        c = t.contact_requests.c
        query = sa.select(c.doc).where(c.shop_id == shop)
        if open_only:
            query = query.where(c.resolved_ms.is_(None))
        query = query.order_by(c.created_ms.desc(), c.id.desc()).limit(limit)
        return [ContactRequest.model_validate(doc) for doc in await self._db.scalars(query)]
