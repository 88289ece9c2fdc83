"""Put a room on a live media worker: the least loaded, chosen under a lock."""

from __future__ import annotations

import asyncio

from vitrine.errors import ErrorCode, VitrineError
from vitrine.models import Room
from vitrine.state import State

PLACEMENT_LOCK_MS = 5000
LOCK_RETRIES = 100
LOCK_RETRY_S = 0.02


def lock_name(room: str) -> str:
    return f"place:{room}"


async def ensure_worker(state: State, room: Room) -> str:
    """Return the room's worker, placing (or re-placing) it when it has none that is alive."""
    if room.worker_id and await state.nodes.get(room.worker_id):
        return room.worker_id
    for _ in range(LOCK_RETRIES):
        token = await state.rooms.acquire_lock(lock_name(room.name), PLACEMENT_LOCK_MS)
        if token is not None:
            break
        await asyncio.sleep(LOCK_RETRY_S)
    else:
        raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "room placement is busy, retry")
    try:
        current = await state.rooms.get_room(room.name)
        if current is None:
            raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "the room no longer exists")
        if current.worker_id and await state.nodes.get(current.worker_id):
            return current.worker_id
        workers = [w for w in await state.nodes.live_workers() if not w.is_full()]
        if not workers:
            raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "no media worker has room for this call")
        chosen = await state.nodes.place_on_least_loaded(workers)
        await state.rooms.set_room_worker(room.name, chosen.id)
        return chosen.id
    finally:
        await state.rooms.release_lock(lock_name(room.name), token)
