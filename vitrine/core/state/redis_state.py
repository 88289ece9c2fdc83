"""Coordination on Redis, for scaled deployments: every store on one connection pool."""

from __future__ import annotations

from vitrine.core.state.bus import RedisEventBus
from vitrine.core.state.coordination import Coordination
from vitrine.core.state.epoch import RedisEpochStore
from vitrine.core.state.leases import RedisParticipantLeases
from vitrine.core.state.locks import RedisLockStore
from vitrine.core.state.nodes import RedisNodeRegistry
from vitrine.core.state.presence import RedisPresenceStore
from vitrine.core.state.redis_util import connect
from vitrine.core.state.rooms import RedisRoomStore


async def open_redis_coordination(url: str) -> Coordination:
    """Connect, failing fast if Redis is unreachable."""
    client = connect(url)
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    bus = RedisEventBus(client)

    async def close() -> None:
        try:
            await bus.close()
        finally:
            await client.aclose()

    return Coordination(
        rooms=RedisRoomStore(client),
        leases=RedisParticipantLeases(client),
        nodes=RedisNodeRegistry(client),
        bus=bus,
        locks=RedisLockStore(client),
        presence=RedisPresenceStore(client),
        epoch=RedisEpochStore(client),
        close=close,
    )
