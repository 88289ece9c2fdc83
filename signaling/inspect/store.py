"""``CaseStore``: after-sales inspection cases (with their artifacts, consent, notes and outcome) and
the erasures carried out on them.

A case is changed only under its lock (``signaling.inspect.cases``); the store itself is plain
reads and writes. The evidence files live on disk (``vitrine.core.artifacts``) and each is named
by its case's record: the retention sweep deletes a folder only through the record that proves it
expired.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, require_one_row, upsert
from vitrine.core.wire.inspect import Case, Erasure


class CaseStore(Protocol):
    async def save(self, case: Case) -> None:
        """Create or replace."""

    async def get(self, shop: str, case_id: str) -> Case | None: ...

    async def delete(self, shop: str, case_id: str) -> None: ...

    async def recent(
        self, shop: str, limit: int | None, *, order_ref: str | None = None, buyer_ref: str | None = None
    ) -> list[Case]:
        """Newest first, optionally only one order's or one buyer's."""

    async def exists(self, shop: str, case_id: str) -> bool: ...

    async def exists_anywhere(self, case_id: str) -> bool:
        """Whether any shop has a case of this id (ids are unique across shops): a file's owner."""

    async def find(self, case_id: str) -> Case | None:
        """A case by id alone, for what names only the case (its room, its files)."""

    async def add_erasure(self, shop: str, erasure: Erasure) -> None: ...

    async def erasures(self, shop: str, limit: int) -> list[Erasure]:
        """Newest first."""


class SqlCaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, case: Case) -> None:
        statement = upsert(self._db, t.cases).values(
            id=case.id,
            shop_id=case.shop,
            created_at_ms=case.created_at_ms,
            order_ref=case.order_ref,
            buyer_ref=case.buyer_ref,
            state=case.state.value,
            closed_at_ms=case.closed_at_ms,
            doc=case.model_dump(mode="json"),
        )
        changed = ("order_ref", "buyer_ref", "state", "closed_at_ms", "doc")
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={column: statement.excluded[column] for column in changed},
            where=t.cases.c.shop_id == statement.excluded.shop_id,
        )
        require_one_row(await self._db.execute(statement), "case", case.id)

    async def get(self, shop: str, case_id: str) -> Case | None:
        c = t.cases.c
        doc = await self._db.scalar(sa.select(c.doc).where(c.shop_id == shop, c.id == case_id))
        return Case.model_validate(doc) if doc is not None else None

    async def delete(self, shop: str, case_id: str) -> None:
        await self._db.execute(t.cases.delete().where(t.cases.c.shop_id == shop, t.cases.c.id == case_id))

    async def recent(
        self, shop: str, limit: int | None, *, order_ref: str | None = None, buyer_ref: str | None = None
    ) -> list[Case]:
        c = t.cases.c
        query = sa.select(c.doc).where(c.shop_id == shop)
        if order_ref is not None:
            query = query.where(c.order_ref == order_ref)
        if buyer_ref is not None:
            query = query.where(c.buyer_ref == buyer_ref)
        query = query.order_by(c.created_at_ms.desc(), c.id.desc()).limit(limit)
        return [Case.model_validate(doc) for doc in await self._db.scalars(query)]

    async def exists(self, shop: str, case_id: str) -> bool:
        c = t.cases.c
        return await self._db.scalar(sa.select(sa.literal(1)).where(c.shop_id == shop, c.id == case_id)) is not None

    async def exists_anywhere(self, case_id: str) -> bool:
        return await self._db.scalar(sa.select(sa.literal(1)).where(t.cases.c.id == case_id)) is not None

    async def find(self, case_id: str) -> Case | None:
        doc = await self._db.scalar(sa.select(t.cases.c.doc).where(t.cases.c.id == case_id))
        return Case.model_validate(doc) if doc is not None else None

    async def add_erasure(self, shop: str, erasure: Erasure) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                t.erasures.insert().values(
                    id=erasure.id, shop_id=shop, at_ms=erasure.at_ms, doc=erasure.model_dump(mode="json")
                )
            )

    async def erasures(self, shop: str, limit: int) -> list[Erasure]:
        c = t.erasures.c
        query = sa.select(c.doc).where(c.shop_id == shop).order_by(c.at_ms.desc(), c.id.desc()).limit(limit)
        return [Erasure.model_validate(doc) for doc in await self._db.scalars(query)]
