"""Shared state: one factory picks memory (embedded) or Redis (scaled) from settings."""

from __future__ import annotations

from vitrine.config import Settings
from vitrine.state.base import EventBus, NodeRegistry, RoomStore, ShopStore, State, WorkerNode
from vitrine.state.memory import MemoryEventBus, MemoryNodeRegistry, MemoryRoomStore
from vitrine.state.outbox import MemoryWebhookOutbox
from vitrine.state.shops import MemoryShopStore

__all__ = ["EventBus", "NodeRegistry", "RoomStore", "ShopStore", "State", "WorkerNode", "open_state"]


async def open_state(settings: Settings) -> State:
    if settings.redis_url:
        from vitrine.state.redis import open_redis_state

        return await open_redis_state(settings.redis_url)

    async def close() -> None:
        return None

    return State(rooms=MemoryRoomStore(), nodes=MemoryNodeRegistry(), bus=MemoryEventBus(), close=close,
                 shops=MemoryShopStore(), outbox=MemoryWebhookOutbox())
