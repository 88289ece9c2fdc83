"""Coordination state: what a running cluster needs for the next few seconds.

Rooms and their members, the media workers and placement, locks, consult presence, and the
event bus. It lives in memory (embedded) or Redis (scaled), one factory picks from settings, and
all of it is either rebuilt from the running calls or safe to lose. Records (shops, calls, cases,
shows, logs, webhooks) are never here: they are in the database, ``vitrine.records``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vitrine.config import Settings
from vitrine.state.bus import EventBus, MemoryEventBus
from vitrine.state.epoch import EpochStore, MemoryEpochStore
from vitrine.state.locks import LockStore, MemoryLockStore
from vitrine.state.nodes import MemoryNodeRegistry, NodeRegistry, WorkerNode
from vitrine.state.presence import MemoryPresenceStore, PresenceStore
from vitrine.state.rooms import MemoryRoomStore, RoomStore

__all__ = ["Coordination", "EventBus", "LockStore", "NodeRegistry", "PresenceStore", "RoomStore", "WorkerNode",
           "open_coordination"]


@dataclass
class Coordination:
    rooms: RoomStore
    nodes: NodeRegistry
    bus: EventBus
    locks: LockStore
    presence: PresenceStore
    epoch: EpochStore
    close: Callable[[], Awaitable[None]]


async def open_coordination(settings: Settings) -> Coordination:
    """Redis when ``VITRINE_REDIS_URL`` is set, else this process's memory."""
    if settings.redis_url:
        from vitrine.state.redis_state import open_redis_coordination

        return await open_redis_coordination(settings.redis_url)

    async def close() -> None:
        return None

    return Coordination(rooms=MemoryRoomStore(), nodes=MemoryNodeRegistry(), bus=MemoryEventBus(),
                        locks=MemoryLockStore(), presence=MemoryPresenceStore(), epoch=MemoryEpochStore(),
                        close=close)
