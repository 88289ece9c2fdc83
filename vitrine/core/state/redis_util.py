"""Small helpers every Redis-backed coordination store uses, and the one type they share for the client."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.asyncio.client import Pipeline, PubSub
from redis.commands.core import AsyncScript

M = TypeVar("M", bound=BaseModel)


class RedisClient(Protocol):
    """The commands the stores use, on a client opened with ``decode_responses=True``.

    redis-py types replies as ``bytes | str`` whatever the client's settings; this client decodes
    every reply, so here they are ``str``. Only :func:`connect` makes one.
    """

    def get(self, name: str) -> Awaitable[str | None]: ...
    def set(
        self, name: str, value: str, *, px: int | None = None, nx: bool = False, xx: bool = False
    ) -> Awaitable[bool | None]: ...
    def exists(self, *names: str) -> Awaitable[int]: ...
    def delete(self, *names: str) -> Awaitable[int]: ...
    def incr(self, name: str, amount: int = 1) -> Awaitable[int]: ...
    def sadd(self, name: str, *values: str) -> Awaitable[int]: ...
    def srem(self, name: str, *values: str) -> Awaitable[int]: ...
    def smembers(self, name: str) -> Awaitable[builtins.set[str]]: ...  # `set` is the command here
    def hget(self, name: str, key: str) -> Awaitable[str | None]: ...
    def hset(self, name: str, key: str, value: str) -> Awaitable[int]: ...
    def hdel(self, name: str, *keys: str) -> Awaitable[int]: ...
    def hexists(self, name: str, key: str) -> Awaitable[bool]: ...
    def hvals(self, name: str) -> Awaitable[list[str]]: ...
    def hgetall(self, name: str) -> Awaitable[dict[str, str]]: ...
    def eval(self, script: str, numkeys: int, *keys_and_args: str | int) -> Awaitable[Any]: ...
    def publish(self, channel: str, message: str) -> Awaitable[int]: ...
    def pubsub_numsub(self, *channels: str) -> Awaitable[list[tuple[str, int]]]: ...
    def ping(self) -> Awaitable[bool]: ...
    def pipeline(self, transaction: bool = True) -> Pipeline: ...
    def transaction(self, func: Callable[[Pipeline], Any | Awaitable[Any]], *watches: str) -> Awaitable[Any]: ...
    def pubsub(self) -> PubSub: ...
    def register_script(self, script: str) -> AsyncScript: ...
    def aclose(self) -> Awaitable[None]: ...


# A burst (a hundred joins at once) has more commands in flight than redis-py's default pool of 100 connections,
# and its default pool then fails the command at once (MaxConnectionsError: a join refused as `internal`). This
# pool makes a command wait for a free connection instead, for at most POOL_WAIT_S.
POOL_CONNECTIONS = 512
POOL_WAIT_S = 10.0

# No socket timeout (redis-py before 8 had none; 8 sets 5 s). With one, redis-py sends every command inside
# ``asyncio.wait_for``, and on Python 3.11 a wait_for whose inner send finishes as its task is cancelled returns
# normally: the cancellation is lost (CPython gh-86296, fixed in 3.12). A loop cancelled at shutdown while it sends
# (a worker's heartbeat, the lease renewal, the desk sweeper) then runs on, and the shutdown awaiting it never ends.
SOCKET_TIMEOUT_S: float | None = None


def connect(url: str) -> RedisClient:
    """A client on ``url`` that decodes replies to ``str``. Lazy: nothing is sent until the first command."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
    )
    # The one cast: redis-py's client is not generic over decode_responses, and this one decodes.
    return cast(RedisClient, aioredis.Redis.from_pool(pool))  # closing the client closes its pool


def load_model(model: type[M], raw: str | None) -> M | None:
    return model.model_validate_json(raw) if raw else None


async def get_each(client: RedisClient, names: list[str]) -> list[str | None]:
    """GET each key in one round trip; not MGET, which Redis Cluster refuses across slots."""
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(name)
        return await pipe.execute()
