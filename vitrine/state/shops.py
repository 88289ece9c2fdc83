"""``ShopStore`` in memory (embedded) and on Redis (scaled). Key layout: ``vitrine.state.keys``.

Both refuse to write an agent or product under a shop that does not exist, so deleting a shop
while a write is in flight never leaves orphans behind (on Redis: one Lua script per write).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from vitrine.errors import ErrorCode, VitrineError
from vitrine.shops import Agent, Product, Shop
from vitrine.state import keys
from vitrine.state.base import ShopStore
from vitrine.state.redis import _get_each, _load


async def require_shop(shops: ShopStore, shop_id: str) -> Shop:
    """The shop, or the typed ``shop_not_found``: for every API call that names a shop."""
    shop = await shops.get_shop(shop_id)
    if shop is None:
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop_id!r}")
    return shop


def _by_created(shops: list[Shop]) -> list[Shop]:
    return sorted(shops, key=lambda shop: (shop.created_at_ms, shop.id))


class MemoryShopStore:
    def __init__(self) -> None:
        self._shops: dict[str, Shop] = {}
        self._agents: dict[str, dict[str, Agent]] = {}
        self._products: dict[str, dict[str, Product]] = {}

    async def create_shop(self, shop: Shop) -> bool:
        if shop.id in self._shops:
            return False
        self._shops[shop.id] = shop.model_copy(deep=True)
        self._agents[shop.id], self._products[shop.id] = {}, {}
        return True

    async def get_shop(self, shop_id: str) -> Shop | None:
        shop = self._shops.get(shop_id)
        return shop.model_copy(deep=True) if shop else None

    async def list_shops(self) -> list[Shop]:
        return _by_created([shop.model_copy(deep=True) for shop in self._shops.values()])

    async def update_shop(self, shop: Shop) -> bool:
        if shop.id not in self._shops:
            return False
        self._shops[shop.id] = shop.model_copy(deep=True)
        return True

    async def delete_shop(self, shop_id: str) -> Shop | None:
        self._agents.pop(shop_id, None)
        self._products.pop(shop_id, None)
        return self._shops.pop(shop_id, None)

    async def put_agent(self, agent: Agent) -> bool:
        if agent.shop not in self._shops:
            return False
        self._agents[agent.shop][agent.id] = agent.model_copy(deep=True)
        return True

    async def get_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        agent = self._agents.get(shop_id, {}).get(agent_id)
        return agent.model_copy(deep=True) if agent else None

    async def list_agents(self, shop_id: str) -> list[Agent]:
        agents = self._agents.get(shop_id, {})
        return [agents[agent_id].model_copy(deep=True) for agent_id in sorted(agents)]

    async def delete_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        return self._agents.get(shop_id, {}).pop(agent_id, None)

    async def put_product(self, shop_id: str, product: Product) -> bool:
        if shop_id not in self._shops:
            return False
        self._products[shop_id][product.sku] = product.model_copy(deep=True)
        return True

    async def get_product(self, shop_id: str, sku: str) -> Product | None:
        product = self._products.get(shop_id, {}).get(sku)
        return product.model_copy(deep=True) if product else None

    async def list_products(self, shop_id: str) -> list[Product]:
        products = self._products.get(shop_id, {})
        return [products[sku].model_copy(deep=True) for sku in sorted(products)]

    async def delete_product(self, shop_id: str, sku: str) -> Product | None:
        return self._products.get(shop_id, {}).pop(sku, None)


# KEYS: shop record, the shop's hash. ARGV: field, JSON. Writes only while the shop exists, in the
# same step as the check: a concurrent delete_shop runs wholly before (refused) or after (removed).
_PUT_IF_SHOP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


class RedisShopStore:
    """One shop's keys share the ``{shop:<id>}`` slot, so the script and MULTI blocks stay cluster-safe."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._put_if_shop = client.register_script(_PUT_IF_SHOP)

    async def create_shop(self, shop: Shop) -> bool:
        # As for rooms: the record decides the race and is written before the index entry.
        if not await self._r.set(keys.shop_key(shop.id), shop.model_dump_json(), nx=True):
            return False
        await self._r.sadd(keys.SHOPS_INDEX, shop.id)
        return True

    async def get_shop(self, shop_id: str) -> Shop | None:
        return _load(Shop, await self._r.get(keys.shop_key(shop_id)))

    async def list_shops(self) -> list[Shop]:
        ids = list(await self._r.smembers(keys.SHOPS_INDEX))
        raws = await _get_each(self._r, [keys.shop_key(shop_id) for shop_id in ids])
        for shop_id in [shop_id for shop_id, raw in zip(ids, raws, strict=True) if not raw]:
            await self._prune(shop_id)
        return _by_created([Shop.model_validate_json(raw) for raw in raws if raw])

    async def _prune(self, shop_id: str) -> None:
        """Drop an index entry whose record is gone, re-adding it if the shop was created meanwhile."""
        await self._r.srem(keys.SHOPS_INDEX, shop_id)
        if await self._r.exists(keys.shop_key(shop_id)):
            await self._r.sadd(keys.SHOPS_INDEX, shop_id)

    async def update_shop(self, shop: Shop) -> bool:
        return bool(await self._r.set(keys.shop_key(shop.id), shop.model_dump_json(), xx=True))

    async def delete_shop(self, shop_id: str) -> Shop | None:
        await self._r.srem(keys.SHOPS_INDEX, shop_id)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.get(keys.shop_key(shop_id))
            pipe.delete(*keys.shop_keys(shop_id))
            raw, _ = await pipe.execute()
        return _load(Shop, raw)

    async def _put(self, shop_id: str, hash_key: str, field: str, raw: str) -> bool:
        return bool(await self._put_if_shop(keys=[keys.shop_key(shop_id), hash_key], args=[field, raw]))

    async def _pop(self, hash_key: str, field: str) -> str | None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hget(hash_key, field)
            pipe.hdel(hash_key, field)
            raw, _ = await pipe.execute()
        return raw

    async def put_agent(self, agent: Agent) -> bool:
        return await self._put(agent.shop, keys.shop_agents_key(agent.shop), agent.id, agent.model_dump_json())

    async def get_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        return _load(Agent, await self._r.hget(keys.shop_agents_key(shop_id), agent_id))

    async def list_agents(self, shop_id: str) -> list[Agent]:
        agents = [Agent.model_validate_json(raw) for raw in await self._r.hvals(keys.shop_agents_key(shop_id))]
        return sorted(agents, key=lambda agent: agent.id)

    async def delete_agent(self, shop_id: str, agent_id: str) -> Agent | None:
        return _load(Agent, await self._pop(keys.shop_agents_key(shop_id), agent_id))

    async def put_product(self, shop_id: str, product: Product) -> bool:
        return await self._put(shop_id, keys.shop_products_key(shop_id), product.sku, product.model_dump_json())

    async def get_product(self, shop_id: str, sku: str) -> Product | None:
        return _load(Product, await self._r.hget(keys.shop_products_key(shop_id), sku))

    async def list_products(self, shop_id: str) -> list[Product]:
        products = [Product.model_validate_json(raw) for raw in await self._r.hvals(keys.shop_products_key(shop_id))]
        return sorted(products, key=lambda product: product.sku)

    async def delete_product(self, shop_id: str, sku: str) -> Product | None:
        return _load(Product, await self._pop(keys.shop_products_key(shop_id), sku))
