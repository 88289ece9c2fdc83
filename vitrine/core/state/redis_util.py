"""Small helpers every Redis-backed coordination store uses."""

from __future__ import annotations

from typing import TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def load_model(model: type[M], raw: str | None) -> M | None:
    return model.model_validate_json(raw) if raw else None


async def get_each(client: aioredis.Redis, names: list[str]) -> list[str | None]:
    """GET each key in one round trip; not MGET, which Redis Cluster refuses across slots."""
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(name)
        return await pipe.execute()
