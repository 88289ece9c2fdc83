"""``NodeRegistry``: the live media workers, their load, and placement on the least loaded.

Coordination state: each worker's record carries a TTL and is written again by every heartbeat, so a
registry that lost its contents (a Redis restart) is whole again within one heartbeat.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Protocol

from pydantic import Field

from vitrine.core.models import Strict, now_ms
from vitrine.core.state import keys
from vitrine.core.state.redis_util import RedisClient, get_each, load_model

PLACED_TTL_MS = 60_000  # a placement counter outlives no worker: heartbeats delete it long before


class WorkerState(StrEnum):
    """Where a media worker is in its life. A draining worker keeps serving what it has until its rooms are
    ended (``media/drain.py``) but is never given a new room or viewer; a stopped one is deregistered."""

    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


class WorkerNode(Strict):
    """A media worker as it announces itself with every heartbeat."""

    id: str
    state: WorkerState = WorkerState.SERVING
    rooms: int = 0
    participants: int = 0
    max_rooms: int = 0
    heartbeat_ms: int = 0
    stats: dict[str, int] = Field(default_factory=dict)  # forwarding counters, for metrics and tests

    def is_full(self) -> bool:
        return self.max_rooms > 0 and self.rooms >= self.max_rooms

    def takes_new(self) -> bool:
        """Whether placement may put a new room or viewer here."""
        return self.state == WorkerState.SERVING and not self.is_full()


class WorkerRegistry(Protocol):
    """What a worker does with the registry: announce itself with its load, and leave."""

    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        """Record the worker's state; rooms placed on it before now are in ``node.rooms``."""

    async def remove(self, worker_id: str) -> None: ...


class NodeRegistry(WorkerRegistry, Protocol):
    async def place_on_least_loaded(self, workers: list[WorkerNode]) -> WorkerNode:
        """Pick the least loaded of ``workers`` and count the room on it, in one atomic step.

        Load includes rooms placed since each worker's last heartbeat, so a burst of
        concurrent placements spreads instead of all reading the same heartbeat.
        """

    async def place_viewer(self, workers: list[WorkerNode]) -> WorkerNode:
        """The worker with the fewest participants (heartbeat plus viewers placed since), counting this one."""

    async def get(self, worker_id: str) -> WorkerNode | None: ...

    async def live_workers(self) -> list[WorkerNode]: ...


def placement_load(node: WorkerNode, placed_since_heartbeat: int) -> float:
    rooms = node.rooms + placed_since_heartbeat
    return rooms / node.max_rooms if node.max_rooms else 1.0


def stamp(node: WorkerNode) -> WorkerNode:
    return node.model_copy(update={"heartbeat_ms": now_ms()})


class MemoryNodeRegistry:
    def __init__(self) -> None:
        self._nodes: dict[str, tuple[WorkerNode, float]] = {}
        self._placed: dict[str, int] = {}
        self._viewers_placed: dict[str, int] = {}

    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        self._nodes[node.id] = (stamp(node), time.monotonic() + ttl_s)
        self._placed.pop(node.id, None)
        self._viewers_placed.pop(node.id, None)

    async def place_viewer(self, workers: list[WorkerNode]) -> WorkerNode:
        chosen = min(workers, key=lambda w: (w.participants + self._viewers_placed.get(w.id, 0), w.id))
        self._viewers_placed[chosen.id] = self._viewers_placed.get(chosen.id, 0) + 1
        return chosen

    async def place_on_least_loaded(self, workers: list[WorkerNode]) -> WorkerNode:
        chosen = min(workers, key=lambda w: (placement_load(w, self._placed.get(w.id, 0)), w.participants, w.id))
        self._placed[chosen.id] = self._placed.get(chosen.id, 0) + 1
        return chosen

    async def remove(self, worker_id: str) -> None:
        self._nodes.pop(worker_id, None)

    async def get(self, worker_id: str) -> WorkerNode | None:
        entry = self._nodes.get(worker_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    async def live_workers(self) -> list[WorkerNode]:
        now = time.monotonic()
        return [node for node, expires in self._nodes.values() if expires >= now]


# KEYS: each candidate's placed counter, ordered by worker id. ARGV: counter TTL, then
# rooms, max_rooms, participants per candidate (from its heartbeat). Returns the 0-based
# index of the least loaded (rooms placed since the heartbeat included; ties: fewer
# participants, then order) and counts the placement on it.
_PLACE_LEAST_LOADED = """
local best, best_load, best_participants = 0, nil, nil
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local rooms = tonumber(ARGV[base]) + tonumber(redis.call('GET', key) or '0')
  local max_rooms = tonumber(ARGV[base + 1])
  local load = 1.0
  if max_rooms > 0 then load = rooms / max_rooms end
  local participants = tonumber(ARGV[base + 2])
  if best_load == nil or load < best_load or (load == best_load and participants < best_participants) then
    best, best_load, best_participants = i, load, participants
  end
end
redis.call('INCR', KEYS[best])
redis.call('PEXPIRE', KEYS[best], ARGV[1])
return best - 1
"""
# KEYS: each candidate's viewers-placed counter, ordered by worker id. ARGV: counter TTL, then
# participants per candidate (from its heartbeat). Returns the 0-based index of the candidate with
# the fewest participants, viewers placed since its heartbeat included, and counts this one on it.
_PLACE_VIEWER = """
local best, best_load = 0, nil
for i, key in ipairs(KEYS) do
  local load = tonumber(ARGV[1 + i]) + tonumber(redis.call('GET', key) or '0')
  if best_load == nil or load < best_load then best, best_load = i, load end
end
redis.call('INCR', KEYS[best])
redis.call('PEXPIRE', KEYS[best], ARGV[1])
return best - 1
"""
# KEYS: index set, record. ARGV: member. Atomic, so a heartbeat racing the cleanup wins.
_PRUNE_IF_GONE = "if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end return 0"


class RedisNodeRegistry:
    """Each record carries a TTL, so a worker that stops heartbeating disappears by itself."""

    def __init__(self, client: RedisClient) -> None:
        self._r = client
        self._prune = client.register_script(_PRUNE_IF_GONE)

    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        async with self._r.pipeline(transaction=True) as pipe:  # same slot: atomic
            pipe.set(keys.worker_key(node.id), stamp(node).model_dump_json(), px=max(1, int(ttl_s * 1000)))
            pipe.delete(keys.worker_placed_key(node.id), keys.worker_viewers_placed_key(node.id))
            pipe.sadd(keys.WORKERS_INDEX, node.id)
            await pipe.execute()

    async def place_viewer(self, workers: list[WorkerNode]) -> WorkerNode:
        ordered = sorted(workers, key=lambda w: w.id)
        counters = [keys.worker_viewers_placed_key(w.id) for w in ordered]
        index = await self._r.eval(
            _PLACE_VIEWER, len(ordered), *counters, PLACED_TTL_MS, *[w.participants for w in ordered]
        )
        return ordered[int(index)]

    async def place_on_least_loaded(self, workers: list[WorkerNode]) -> WorkerNode:
        ordered = sorted(workers, key=lambda w: w.id)
        args: list[int] = [PLACED_TTL_MS]
        for worker in ordered:
            args += [worker.rooms, worker.max_rooms, worker.participants]
        index = await self._r.eval(
            _PLACE_LEAST_LOADED, len(ordered), *[keys.worker_placed_key(w.id) for w in ordered], *args
        )
        return ordered[int(index)]

    async def remove(self, worker_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(keys.worker_key(worker_id))
            pipe.srem(keys.WORKERS_INDEX, worker_id)
            await pipe.execute()

    async def get(self, worker_id: str) -> WorkerNode | None:
        return load_model(WorkerNode, await self._r.get(keys.worker_key(worker_id)))

    async def live_workers(self) -> list[WorkerNode]:
        ids = sorted(await self._r.smembers(keys.WORKERS_INDEX))
        raws = await get_each(self._r, [keys.worker_key(worker_id) for worker_id in ids])
        for worker_id in [worker_id for worker_id, raw in zip(ids, raws, strict=True) if not raw]:
            await self._prune(keys=[keys.WORKERS_INDEX, keys.worker_key(worker_id)], args=[worker_id])
        return [WorkerNode.model_validate_json(raw) for raw in raws if raw]
