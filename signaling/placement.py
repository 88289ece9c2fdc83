"""Put a room on a live media worker: the least loaded, chosen under the room's placement lock.

A worker is alive while its registration is, and also while it still listens on its RPC channel: a worker whose
event loop is busy (a burst of joins on a loaded machine) can send its heartbeat late and let its registration
lapse for a moment, but its pub/sub connection, held by the kernel, stays subscribed. Only a worker that is
neither registered nor listening has died (a SIGKILL closes its connection at once). Moving the room of a worker
that is only late would split it: the members already joined stay on the old worker, the next ones join on
another, and nobody sees anyone.
"""

from __future__ import annotations

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Room
from vitrine.core.state import Coordination, keys
from vitrine.core.state.locks import NamedLocks
from vitrine.core.state.nodes import WorkerState

PLACEMENT_LOCK_MS = 5000
PLACEMENT_WAIT_S = 2.0


def lock_name(room: str) -> str:
    return f"place:{room}"


async def ensure_worker(coordination: Coordination, room: Room) -> str:
    """Return the room's worker, placing (or re-placing) it when it has none that is alive and serving: a
    draining worker is ending the room, and its clients rejoin here to be placed on another."""
    if room.worker_id and await _keeps(coordination, room.worker_id):
        return room.worker_id
    locks = NamedLocks(
        coordination.locks, "room placement is busy, retry", ttl_ms=PLACEMENT_LOCK_MS, wait_s=PLACEMENT_WAIT_S
    )
    async with locks.hold(lock_name(room.name)):
        current = await coordination.rooms.get_room(room.name)
        if current is None:
            raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "the room no longer exists")
        if current.worker_id and await _keeps(coordination, current.worker_id):
            return current.worker_id
        workers = [w for w in await coordination.nodes.live_workers() if w.takes_new()]
        if not workers:
            raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "no media worker has room for this call")
        chosen = await coordination.nodes.place_on_least_loaded(workers)
        await coordination.rooms.set_room_worker(room.name, chosen.id)
        return chosen.id


async def can_place(coordination: Coordination) -> bool:
    """Whether a join can be placed: some worker is registered and not draining."""
    return any(node.state == WorkerState.SERVING for node in await coordination.nodes.live_workers())


async def worker_alive(coordination: Coordination, worker_id: str) -> bool:
    """Registered, or, with its registration lapsed, still listening for commands: late, not dead."""
    if await coordination.nodes.get(worker_id) is not None:
        return True
    return await coordination.bus.listeners(keys.worker_rpc_channel(worker_id)) > 0


async def _keeps(coordination: Coordination, worker_id: str) -> bool:
    """Whether the room stays on ``worker_id``: it serves, or it is only late (its registration lapsed, it still
    listens). A draining worker announces it in its registration, and its rooms move."""
    node = await coordination.nodes.get(worker_id)
    if node is not None:
        return node.state == WorkerState.SERVING
    return await coordination.bus.listeners(keys.worker_rpc_channel(worker_id)) > 0
