"""``ShopStore``: shops with their agents and products, as records.

Every agent and product call is scoped by shop id: there is no way to reach a record without naming
the shop that owns it. A write under a shop that does not exist is refused (the foreign key), and
deleting a shop deletes everything it owns in the same transaction (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.records import tables as t
from vitrine.core.records.database import Database, upsert
from vitrine.core.shops import Agent, Product, Shop


class ShopStore(Protocol):
    async def create_shop(self, shop: Shop) -> bool:
        """Store a new shop; False when a shop of that id exists."""

    async def get_shop(self, shop_id: str) -> Shop | None: ...

    async def list_shops(self) -> list[Shop]:
        """Every shop, oldest first."""

    async def update_shop(self, shop: Shop) -> bool:
        """Replace an existing shop's record; False (and nothing written) if it does not exist."""

    async def delete_shop(self, shop_id: str) -> Shop | None:
        """Remove the shop with everything it owns."""

    async def put_agent(self, agent: Agent) -> bool:
        """Create or replace ``agent`` under ``agent.shop``; False if that shop does not exist."""

    async def get_agent(self, shop_id: str, agent_id: str) -> Agent | None: ...

    async def list_agents(self, shop_id: str) -> list[Agent]:
        """The shop's agents, by id."""

    async def delete_agent(self, shop_id: str, agent_id: str) -> Agent | None: ...

    async def put_product(self, shop_id: str, product: Product) -> bool:
        """Create or replace by SKU; False if the shop does not exist. URLs are checked by the caller."""

    async def get_product(self, shop_id: str, sku: str) -> Product | None: ...

    async def list_products(self, shop_id: str) -> list[Product]:
        """The shop's products, by SKU."""

    async def delete_product(self, shop_id: str, sku: str) -> Product | None: ...


async def require_shop(shops: ShopStore, shop_id: str) -> Shop:
    """The shop, or the typed ``shop_not_found``: for every API call that names a shop."""
    shop = await shops.get_shop(shop_id)
    if shop is None:
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop_id!r}")
    return shop


class SqlShopStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_shop(self, shop: Shop) -> bool:
        statement = upsert(self._db, t.shops).values(
            id=shop.id, created_at_ms=shop.created_at_ms, doc=shop.model_dump(mode="json")
        )
        result = await self._db.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
        return result.rowcount == 1

    async def get_shop(self, shop_id: str) -> Shop | None:
        doc = await self._db.scalar(sa.select(t.shops.c.doc).where(t.shops.c.id == shop_id))
        return Shop.model_validate(doc) if doc is not None else None

    async def list_shops(self) -> list[Shop]:
        query = sa.select(t.shops.c.doc).order_by(t.shops.c.created_at_ms, t.shops.c.id)
        return [Shop.model_validate(doc) for doc in await self._db.scalars(query)]

    async def update_shop(self, shop: Shop) -> bool:
        statement = t.shops.update().where(t.shops.c.id == shop.id).values(doc=shop.model_dump(mode="json"))
        return (await self._db.execute(statement)).rowcount == 1

    async def delete_shop(self, shop_id: str) -> Shop | None:
        statement = t.shops.delete().where(t.shops.c.id == shop_id).returning(t.shops.c.doc)
        doc = (await self._db.execute(statement)).scalar_one_or_none()
        return Shop.model_validate(doc) if doc is not None else None

    async def _put(self, table: sa.Table, shop_id: str, key: str, value: str, doc: dict[str, object]) -> bool:
        statement = upsert(self._db, table).values({"shop_id": shop_id, key: value, "doc": doc})
        statement = statement.on_conflict_do_update(
            index_elements=["shop_id", key], set_={"doc": statement.excluded.doc}
        )
        try:
            await self._db.execute(statement)
        except IntegrityError:  # the shop does not exist (or was deleted meanwhile): its foreign key refused it
            return False
        return True

    async def _get(self, table: sa.Table, shop_id: str, key: str, value: str) -> object | None:
        query = sa.select(table.c.doc).where(table.c.shop_id == shop_id, table.c[key] == value)
        return await self._db.scalar(query)

    async def _list(self, table: sa.Table, shop_id: str, key: str) -> list[object]:
        query = sa.select(table.c.doc).where(table.c.shop_id == shop_id).order_by(table.c[key])
        return await self._db.scalars(query)

    async def _delete(self, table: sa.Table, shop_id: str, key: str, value: str) -> object | None:
        statement = table.delete().where(table.c.shop_id == shop_id, table.c[key] == value).returning(table.c.doc)
        return (await self._db.execute(statement)).scalar_one_or_none()

    async def put_agent(self, agent: Agent) -> bool:
        return await self._put(t.agents, agent.shop, "id", agent.id, agent.model_dump(mode="json"))

    async def get_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        doc = await self._get(t.agents, shop_id, "id", agent_id)
        return Agent.model_validate(doc) if doc is not None else None

    async def list_agents(self, shop_id: str) -> list[Agent]:
        return [Agent.model_validate(doc) for doc in await self._list(t.agents, shop_id, "id")]

    async def delete_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        doc = await self._delete(t.agents, shop_id, "id", agent_id)
        return Agent.model_validate(doc) if doc is not None else None

    async def put_product(self, shop_id: str, product: Product) -> bool:
        return await self._put(t.products, shop_id, "sku", product.sku, product.model_dump(mode="json"))

    async def get_product(self, shop_id: str, sku: str) -> Product | None:
        doc = await self._get(t.products, shop_id, "sku", sku)
        return Product.model_validate(doc) if doc is not None else None

    async def list_products(self, shop_id: str) -> list[Product]:
        return [Product.model_validate(doc) for doc in await self._list(t.products, shop_id, "sku")]

    async def delete_product(self, shop_id: str, sku: str) -> Product | None:
        doc = await self._delete(t.products, shop_id, "sku", sku)
        return Product.model_validate(doc) if doc is not None else None
