"""Coordination state: what a running cluster needs for the next few seconds.

Rooms and their members, the media workers and placement, locks, consult presence, and the
event bus. It lives in memory (embedded) or Redis (scaled), one factory picks from settings, and
all of it is either rebuilt from the running calls or safe to lose. Records (shops, calls, cases,
shows, logs, webhooks) are never here: they are in the database, ``vitrine.core.records``.
"""

from __future__ import annotations

from vitrine.core.config import Settings
from vitrine.core.state.bus import EventBus, MemoryEventBus
from vitrine.core.state.coordination import Coordination
from vitrine.core.state.epoch import MemoryEpochStore
from vitrine.core.state.leases import MemoryParticipantLeases
from vitrine.core.state.locks import LockStore, MemoryLockStore
from vitrine.core.state.nodes import MemoryNodeRegistry, NodeRegistry, WorkerNode
from vitrine.core.state.presence import MemoryPresenceStore, PresenceStore
from vitrine.core.state.rooms import MemoryRoomStore, RoomStore

__all__ = [
    "Coordination",
    "EventBus",
    "LockStore",
    "NodeRegistry",
    "PresenceStore",
    "RoomStore",
    "WorkerNode",
    "open_coordination",
]


async def open_coordination(settings: Settings) -> Coordination:
    """Redis when ``VITRINE_REDIS_URL`` is set, else this process's memory."""
    if settings.redis_url:
        from vitrine.core.state.redis_state import open_redis_coordination

        return await open_redis_coordination(settings.redis_url)

    async def close() -> None:
        return None

    rooms = MemoryRoomStore()
    return Coordination(
        rooms=rooms,
        leases=MemoryParticipantLeases(rooms),
        nodes=MemoryNodeRegistry(),
        bus=MemoryEventBus(),
        locks=MemoryLockStore(),
        presence=MemoryPresenceStore(),
        epoch=MemoryEpochStore(),
        close=close,
    )
