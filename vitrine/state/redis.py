"""Redis-backed shared state for scaled deployments (several signaling nodes and media workers).

Semantics match ``vitrine.state.memory``; anything that must not interleave between
nodes (admission, room creation, lock release) is one Redis command or one Lua script.
Key layout lives in ``vitrine.state.keys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from typing import Any, TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel

from vitrine.errors import ErrorCode, VitrineError
from vitrine.models import Participant, Room, Track
from vitrine.state import keys
from vitrine.state.base import JoinOutcome, MessageHandler, State, WorkerNode, stamp
from vitrine.tasks import TaskSet

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# KEYS: participants, identities. ARGV: sid, identity, participant JSON, max. Returns {'full'} or
# {'ok', replaced JSON or ''}; an identity entry whose sid is gone counts as no session.
_ADD_PARTICIPANT = """
local old_sid = redis.call('HGET', KEYS[2], ARGV[2])
local old = false
if old_sid then old = redis.call('HGET', KEYS[1], old_sid) end
if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'full'} end
if old then redis.call('HDEL', KEYS[1], old_sid) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return {'ok', old or ''}
"""

# KEYS: participants, identities. ARGV: sid. Drops the identity entry only if it still
# points at this sid (a newer session of the same identity keeps its own).
_REMOVE_PARTICIPANT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local identity = cjson.decode(raw)['identity']
if redis.call('HGET', KEYS[2], identity) == ARGV[1] then redis.call('HDEL', KEYS[2], identity) end
return raw
"""

# KEYS: lock. ARGV: token. Compare-and-delete: an expired holder cannot free a successor's lock.
_RELEASE_LOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

# KEYS: index set, record. ARGV: member. Atomic, so a heartbeat racing the cleanup wins.
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
_PRUNE_IF_GONE = "if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end return 0"

SUBSCRIBE_TIMEOUT_S = 10.0
PLACED_TTL_MS = 60_000  # a placement counter outlives no worker: heartbeats delete it long before


def _load(model: type[M], raw: str | None) -> M | None:
    return model.model_validate_json(raw) if raw else None


async def _get_each(client: aioredis.Redis, names: list[str]) -> list[str | None]:
    """GET each key in one round trip; not MGET, which Redis Cluster refuses across slots."""
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(name)
        return await pipe.execute()


class RedisRoomStore:
    """Rooms, participants, tracks, sequence and locks; one room's keys share a cluster slot."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._add_participant = client.register_script(_ADD_PARTICIPANT)
        self._remove_participant = client.register_script(_REMOVE_PARTICIPANT)
        self._release_lock = client.register_script(_RELEASE_LOCK)

    async def create_room(self, room: Room) -> bool:
        # SET NX decides the race; the index is written after, so a listed room always has
        # (or just had) a record. delete_room removes from the index first for the same reason.
        if not await self._r.set(keys.room_key(room.name), room.model_dump_json(), nx=True):
            return False
        await self._r.sadd(keys.ROOMS_INDEX, room.name)
        return True

    async def get_room(self, name: str) -> Room | None:
        return _load(Room, await self._r.get(keys.room_key(name)))

    async def list_rooms(self) -> list[Room]:
        names = list(await self._r.smembers(keys.ROOMS_INDEX))
        raws = await _get_each(self._r, [keys.room_key(name) for name in names])
        for name in [name for name, raw in zip(names, raws, strict=True) if not raw]:
            await self._prune_room(name)
        rooms = [Room.model_validate_json(raw) for raw in raws if raw]
        return sorted(rooms, key=lambda room: (room.created_at_ms, room.name))

    async def _prune_room(self, name: str) -> None:
        """Drop an index entry left by a crash or a create/delete race, re-adding it if the
        room was created meanwhile (create writes the record before the index)."""
        await self._r.srem(keys.ROOMS_INDEX, name)
        if await self._r.exists(keys.room_key(name)):
            await self._r.sadd(keys.ROOMS_INDEX, name)

    async def set_room_worker(self, name: str, worker_id: str | None) -> None:
        key = keys.room_key(name)

        async def update(pipe: Any) -> None:
            if room := _load(Room, await pipe.get(key)):
                room.worker_id = worker_id
                pipe.multi()
                pipe.set(key, room.model_dump_json(), xx=True)

        await self._r.transaction(update, key)  # WATCH: retried if the record changes meanwhile

    async def delete_room(self, name: str) -> Room | None:
        await self._r.srem(keys.ROOMS_INDEX, name)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.get(keys.room_key(name))
            pipe.delete(*keys.room_keys(name))
            raw, _ = await pipe.execute()
        return _load(Room, raw)

    async def add_participant(self, room: str, participant: Participant, max_participants: int) -> JoinOutcome:
        result = await self._add_participant(
            keys=[keys.participants_key(room), keys.identities_key(room)],
            args=[participant.sid, participant.identity, participant.model_dump_json(), max_participants],
        )
        if result[0] == "full":
            raise VitrineError(ErrorCode.ROOM_FULL, "the room is full")
        return JoinOutcome(replaced=_load(Participant, result[1]))

    async def remove_participant(self, room: str, sid: str) -> Participant | None:
        room_keys = [keys.participants_key(room), keys.identities_key(room)]
        return _load(Participant, await self._remove_participant(keys=room_keys, args=[sid]))

    async def get_participant(self, room: str, sid: str) -> Participant | None:
        return _load(Participant, await self._r.hget(keys.participants_key(room), sid))

    async def list_participants(self, room: str) -> list[Participant]:
        members = [Participant.model_validate_json(raw) for raw in await self._r.hvals(keys.participants_key(room))]
        return sorted(members, key=lambda p: (p.joined_at_ms, p.sid))  # hash order is arbitrary

    async def add_track(self, room: str, track: Track) -> None:
        await self._r.hset(keys.tracks_key(room), track.sid, track.model_dump_json())

    async def remove_track(self, room: str, track_sid: str) -> Track | None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hget(keys.tracks_key(room), track_sid)
            pipe.hdel(keys.tracks_key(room), track_sid)
            raw, _ = await pipe.execute()
        return _load(Track, raw)

    async def list_tracks(self, room: str) -> list[Track]:
        return [Track.model_validate_json(raw) for raw in await self._r.hvals(keys.tracks_key(room))]

    async def add_knock(self, room: str, knock_id: str, raw: str) -> None:
        await self._r.hset(keys.knocks_key(room), knock_id, raw)

    async def take_knock(self, room: str, knock_id: str) -> str | None:
        async with self._r.pipeline(transaction=True) as pipe:  # MULTI: read and delete as one step
            pipe.hget(keys.knocks_key(room), knock_id)
            pipe.hdel(keys.knocks_key(room), knock_id)
            raw, deleted = await pipe.execute()
        return raw if deleted else None

    async def list_knocks(self, room: str) -> list[str]:
        return list(await self._r.hvals(keys.knocks_key(room)))

    async def add_relay(self, room: str, worker_id: str) -> None:
        await self._r.sadd(keys.relays_key(room), worker_id)

    async def remove_relay(self, room: str, worker_id: str) -> None:
        await self._r.srem(keys.relays_key(room), worker_id)

    async def list_relays(self, room: str) -> list[str]:
        return sorted(await self._r.smembers(keys.relays_key(room)))

    async def next_seq(self, room: str) -> int:
        return int(await self._r.incr(keys.seq_key(room)))

    async def current_seq(self, room: str) -> int:
        return int(await self._r.get(keys.seq_key(room)) or 0)

    async def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        token = secrets.token_hex(16)
        ok = await self._r.set(keys.lock_key(name), token, nx=True, px=max(1, int(ttl_ms)))
        return token if ok else None

    async def release_lock(self, name: str, token: str) -> bool:
        return bool(await self._release_lock(keys=[keys.lock_key(name)], args=[token]))


class RedisNodeRegistry:
    """Each record carries a TTL, so a worker that stops heartbeating disappears by itself."""

    def __init__(self, client: aioredis.Redis) -> None:
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
        index = await self._r.eval(_PLACE_VIEWER, len(ordered), *counters, PLACED_TTL_MS,
                                   *[w.participants for w in ordered])
        return ordered[int(index)]

    async def place_on_least_loaded(self, workers: list[WorkerNode]) -> WorkerNode:
        ordered = sorted(workers, key=lambda w: w.id)
        args: list[int] = [PLACED_TTL_MS]
        for worker in ordered:
            args += [worker.rooms, worker.max_rooms, worker.participants]
        index = await self._r.eval(_PLACE_LEAST_LOADED, len(ordered),
                                   *[keys.worker_placed_key(w.id) for w in ordered], *args)
        return ordered[int(index)]

    async def remove(self, worker_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(keys.worker_key(worker_id))
            pipe.srem(keys.WORKERS_INDEX, worker_id)
            await pipe.execute()

    async def get(self, worker_id: str) -> WorkerNode | None:
        return _load(WorkerNode, await self._r.get(keys.worker_key(worker_id)))

    async def live_workers(self) -> list[WorkerNode]:
        ids = sorted(await self._r.smembers(keys.WORKERS_INDEX))
        raws = await _get_each(self._r, [keys.worker_key(worker_id) for worker_id in ids])
        for worker_id in [worker_id for worker_id, raw in zip(ids, raws, strict=True) if not raw]:
            await self._prune(keys=[keys.WORKERS_INDEX, keys.worker_key(worker_id)], args=[worker_id])
        return [WorkerNode.model_validate_json(raw) for raw in raws if raw]


_STOP = object()


class _Channel:
    """Handlers of one channel and the queue that feeds them in arrival order."""

    def __init__(self) -> None:
        self.handlers: dict[RedisSubscription, MessageHandler] = {}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


class RedisSubscription:
    def __init__(self, bus: RedisEventBus, channel: str, state: _Channel) -> None:
        self._bus, self._channel, self._state = bus, channel, state

    async def close(self) -> None:
        await self._bus._detach(self._channel, self._state, self)


class RedisEventBus:
    """One pub/sub connection per bus. A reader task routes messages into per-channel queues,
    each drained by its own task: order holds per channel, a slow handler delays only its
    channel, and handlers may (un)subscribe without deadlocking the reader."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._pubsub = client.pubsub()
        self._channels: dict[str, _Channel] = {}  # channels that have handlers
        self._subscribed: dict[str, asyncio.Future[None]] = {}  # SUBSCRIBE sent -> its confirmation
        self._pending: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._send_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._tasks = TaskSet()  # the reader and one dispatcher per channel
        self._closed = False

    async def publish(self, channel: str, message: str) -> int:
        return int(await self._r.publish(channel, message))

    async def subscribe(self, channel: str, handler: MessageHandler) -> RedisSubscription:
        if self._closed:
            raise RuntimeError("event bus is closed")
        await self._start()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
            self._tasks.spawn(self._dispatch(channel, state))
        sub = RedisSubscription(self, channel, state)
        state.handlers[sub] = handler
        try:
            await self._sync(channel)
        except BaseException:
            with contextlib.suppress(Exception):
                await sub.close()
            raise
        return sub

    async def _sync(self, channel: str) -> None:
        """Make the server subscription match whether ``channel`` has handlers, and wait for the
        confirmation. Decided and sent under one lock, so an UNSUBSCRIBE never overtakes a later
        SUBSCRIBE of the same channel; Redis confirms in order, hence the FIFO per channel."""
        async with self._send_lock:
            want = channel in self._channels
            future = self._subscribed.get(channel)  # joining a SUBSCRIBE maybe still in flight
            if want != (future is not None):
                future = asyncio.get_running_loop().create_future()
                waiting = self._pending.setdefault(("subscribe" if want else "unsubscribe", channel), deque())
                waiting.append(future)
                try:
                    await (self._pubsub.subscribe(channel) if want else self._pubsub.unsubscribe(channel))
                except BaseException:
                    waiting.remove(future)  # not sent: keep later confirmations aligned
                    raise
                if want:
                    self._subscribed[channel] = future
                else:
                    del self._subscribed[channel]
        if future is not None:
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT_S)

    async def _detach(self, channel: str, state: _Channel, sub: RedisSubscription) -> None:
        if state.handlers.pop(sub, None) is None or state.handlers:
            return
        if self._channels.get(channel) is state:
            del self._channels[channel]
        state.queue.put_nowait(_STOP)  # the dispatcher ends itself: it may be the caller
        if not self._closed:
            await self._sync(channel)

    async def _start(self) -> None:
        """Connect on first subscribe, so a process that only publishes holds no pub/sub connection."""
        async with self._start_lock:
            if self._pubsub.connection is None:
                await self._pubsub.connect()
                self._tasks.spawn(self._read())

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:  # redis-py reconnects and resubscribes on the next read
                logger.exception("pub/sub read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            kind, channel = (message["type"], message["channel"]) if message else (None, None)
            if kind == "message" and (state := self._channels.get(channel)) is not None:
                state.queue.put_nowait(message["data"])
            elif waiting := self._pending.get((kind, channel)):  # none after a reconnect's resubscribe
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
                if not waiting:
                    del self._pending[(kind, channel)]

    async def _dispatch(self, channel: str, state: _Channel) -> None:
        while (data := await state.queue.get()) is not _STOP:
            for sub, handler in list(state.handlers.items()):
                if sub not in state.handlers:  # closed by an earlier handler of this message
                    continue
                try:
                    await handler(data)
                except Exception:
                    logger.exception("event handler failed on channel %s", channel)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for waiting in self._pending.values():
            for future in waiting:
                future.cancel()
        self._pending.clear()
        self._channels.clear()
        self._subscribed.clear()
        await self._pubsub.aclose()


async def open_redis_state(url: str) -> State:
    """Connect (failing fast if Redis is unreachable) and wire the stores to one pool."""
    from vitrine.state.desk import RedisDeskStore
    from vitrine.state.live import RedisLiveStore
    from vitrine.state.outbox import RedisWebhookOutbox
    from vitrine.state.roomlog import RedisRoomLog
    from vitrine.state.shops import RedisShopStore  # imported late: it builds on this module's helpers

    client = aioredis.from_url(url, decode_responses=True)
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

    return State(rooms=RedisRoomStore(client), nodes=RedisNodeRegistry(client), bus=bus, close=close,
                 shops=RedisShopStore(client), desk=RedisDeskStore(client), roomlog=RedisRoomLog(client),
                 live=RedisLiveStore(client),
                 outbox=RedisWebhookOutbox(client))
