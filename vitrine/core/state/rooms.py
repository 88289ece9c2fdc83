"""``RoomStore``: rooms, their participants, tracks, knocks, relays and event numbers.

Coordination state, not records: it describes calls running now, lives in memory (embedded) or
Redis (scaled), and is rebuilt from the running calls when it is lost (``vitrine.core.state.epoch``).
Anything that must not interleave between nodes (admission, room creation) is one Redis command or
one Lua script. Key layout: ``vitrine.core.state.keys``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Room, Track
from vitrine.core.state import keys
from vitrine.core.state.leases import LEASE_S, lease_ms
from vitrine.core.state.redis_util import RedisClient, get_each, load_model


@dataclass(frozen=True)
class JoinOutcome:
    """Result of admitting a participant: who it displaced, if the identity was already in."""

    replaced: Participant | None


class RoomStore(Protocol):
    async def create_room(self, room: Room) -> bool:
        """Store a new room; False when a room of that name exists."""

    async def get_room(self, name: str) -> Room | None: ...

    async def list_rooms(self) -> list[Room]: ...

    async def set_room_worker(self, name: str, worker_id: str | None) -> None: ...

    async def delete_room(self, name: str) -> Room | None:
        """Remove a room with its participants, tracks and sequence."""

    async def add_participant(
        self, room: str, participant: Participant, max_participants: int, lease_s: float = LEASE_S
    ) -> JoinOutcome:
        """Admit atomically. Raises ROOM_FULL; replaces an older session of the same identity. The participant
        holds a lease of ``lease_s`` from now, in the same step (``vitrine.core.state.leases``)."""

    async def remove_participant(self, room: str, sid: str) -> Participant | None:
        """Remove the participant and its lease."""

    async def get_participant(self, room: str, sid: str) -> Participant | None: ...

    async def has_identity(self, room: str, identity: str) -> bool:
        """Whether a session of ``identity`` is in the room, without listing everyone."""

    async def list_participants(self, room: str) -> list[Participant]: ...

    async def add_track(self, room: str, track: Track) -> None: ...

    async def remove_track(self, room: str, track_sid: str) -> Track | None: ...

    async def list_tracks(self, room: str) -> list[Track]: ...

    async def add_knock(self, room: str, knock_id: str, raw: str) -> None: ...

    async def take_knock(self, room: str, knock_id: str) -> str | None:
        """Remove and return a knock: only one caller gets it, so a knock is settled once."""

    async def list_knocks(self, room: str) -> list[str]: ...

    async def add_relay(self, room: str, worker_id: str) -> None: ...

    async def remove_relay(self, room: str, worker_id: str) -> None: ...

    async def list_relays(self, room: str) -> list[str]:
        """The relay workers of a live room (see ``signaling.cascade``)."""

    async def next_seq(self, room: str) -> int:
        """Increment and return the room's event sequence number."""

    async def current_seq(self, room: str) -> int: ...


class MemoryRoomStore:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._participants: dict[str, dict[str, Participant]] = defaultdict(dict)
        self._tracks: dict[str, dict[str, Track]] = defaultdict(dict)
        self._relays: dict[str, set[str]] = defaultdict(set)
        self._knocks: dict[str, dict[str, str]] = defaultdict(dict)
        self._seq: dict[str, int] = defaultdict(int)
        # room -> sid -> monotonic deadline of the participant's lease; ``MemoryParticipantLeases`` renews and
        # expires them (one process: nothing to be atomic against between two awaits)
        self.leases: dict[str, dict[str, float]] = defaultdict(dict)

    async def create_room(self, room: Room) -> bool:
        if room.name in self._rooms:
            return False
        self._rooms[room.name] = room.model_copy()
        return True

    async def get_room(self, name: str) -> Room | None:
        room = self._rooms.get(name)
        return room.model_copy() if room else None

    async def list_rooms(self) -> list[Room]:
        return [room.model_copy() for room in self._rooms.values()]

    async def set_room_worker(self, name: str, worker_id: str | None) -> None:
        if name in self._rooms:
            self._rooms[name].worker_id = worker_id

    async def delete_room(self, name: str) -> Room | None:
        self._relays.pop(name, None)
        self._knocks.pop(name, None)
        self._participants.pop(name, None)
        self._tracks.pop(name, None)
        self._seq.pop(name, None)
        self.leases.pop(name, None)
        return self._rooms.pop(name, None)

    async def add_participant(
        self, room: str, participant: Participant, max_participants: int, lease_s: float = LEASE_S
    ) -> JoinOutcome:
        members = self._participants[room]
        replaced = next((p for p in members.values() if p.identity == participant.identity), None)
        if replaced is None and len(members) >= max_participants:
            raise VitrineError(ErrorCode.ROOM_FULL, "the room is full")
        if replaced is not None:
            del members[replaced.sid]
            self.leases[room].pop(replaced.sid, None)
        members[participant.sid] = participant.model_copy()
        self.leases[room][participant.sid] = time.monotonic() + lease_s
        return JoinOutcome(replaced=replaced)

    async def remove_participant(self, room: str, sid: str) -> Participant | None:
        self.leases.get(room, {}).pop(sid, None)
        return self._participants.get(room, {}).pop(sid, None)

    async def get_participant(self, room: str, sid: str) -> Participant | None:
        return self._participants.get(room, {}).get(sid)

    async def has_identity(self, room: str, identity: str) -> bool:
        return any(p.identity == identity for p in self._participants.get(room, {}).values())

    async def list_participants(self, room: str) -> list[Participant]:
        return list(self._participants.get(room, {}).values())

    async def add_track(self, room: str, track: Track) -> None:
        self._tracks[room][track.sid] = track.model_copy()

    async def remove_track(self, room: str, track_sid: str) -> Track | None:
        return self._tracks.get(room, {}).pop(track_sid, None)

    async def list_tracks(self, room: str) -> list[Track]:
        return list(self._tracks.get(room, {}).values())

    async def add_knock(self, room: str, knock_id: str, raw: str) -> None:
        self._knocks[room][knock_id] = raw

    async def take_knock(self, room: str, knock_id: str) -> str | None:
        return self._knocks.get(room, {}).pop(knock_id, None)

    async def list_knocks(self, room: str) -> list[str]:
        return list(self._knocks.get(room, {}).values())

    async def add_relay(self, room: str, worker_id: str) -> None:
        self._relays[room].add(worker_id)

    async def remove_relay(self, room: str, worker_id: str) -> None:
        self._relays[room].discard(worker_id)

    async def list_relays(self, room: str) -> list[str]:
        return sorted(self._relays.get(room, ()))

    async def next_seq(self, room: str) -> int:
        self._seq[room] += 1
        return self._seq[room]

    async def current_seq(self, room: str) -> int:
        return self._seq.get(room, 0)


# KEYS: participants, identities, leases. ARGV: sid, identity, participant JSON, max, lease ms. Returns {'full'} or
# {'ok', replaced JSON or ''}; an identity entry whose sid is gone counts as no session. The lease runs from the
# Redis server's clock, so nodes' clocks never meet.
_ADD_PARTICIPANT = """
local old_sid = redis.call('HGET', KEYS[2], ARGV[2])
local old = false
if old_sid then old = redis.call('HGET', KEYS[1], old_sid) end
if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'full'} end
if old then
  redis.call('HDEL', KEYS[1], old_sid)
  redis.call('ZREM', KEYS[3], old_sid)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[3], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[5]), ARGV[1])
return {'ok', old or ''}
"""

# KEYS: participants, identities, leases. ARGV: sid. Drops the identity entry only if it still
# points at this sid (a newer session of the same identity keeps its own), and the sid's lease.
_REMOVE_PARTICIPANT = """
redis.call('ZREM', KEYS[3], ARGV[1])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local identity = cjson.decode(raw)['identity']
if redis.call('HGET', KEYS[2], identity) == ARGV[1] then redis.call('HDEL', KEYS[2], identity) end
return raw
"""


class RedisRoomStore:
    """Rooms, participants, tracks, sequence and locks; one room's keys share a cluster slot."""

    def __init__(self, client: RedisClient) -> None:
        self._r = client
        self._add_participant = client.register_script(_ADD_PARTICIPANT)
        self._remove_participant = client.register_script(_REMOVE_PARTICIPANT)

    async def create_room(self, room: Room) -> bool:
        # SET NX decides the race; the index is written after, so a listed room always has
        # (or just had) a record. delete_room removes from the index first for the same reason.
        if not await self._r.set(keys.room_key(room.name), room.model_dump_json(), nx=True):
            return False
        await self._r.sadd(keys.ROOMS_INDEX, room.name)
        return True

    async def get_room(self, name: str) -> Room | None:
        return load_model(Room, await self._r.get(keys.room_key(name)))

    async def list_rooms(self) -> list[Room]:
        names = list(await self._r.smembers(keys.ROOMS_INDEX))
        raws = await get_each(self._r, [keys.room_key(name) for name in names])
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
            if room := load_model(Room, await pipe.get(key)):
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
        return load_model(Room, raw)

    async def add_participant(
        self, room: str, participant: Participant, max_participants: int, lease_s: float = LEASE_S
    ) -> JoinOutcome:
        result = await self._add_participant(
            keys=[keys.participants_key(room), keys.identities_key(room), keys.leases_key(room)],
            args=[
                participant.sid,
                participant.identity,
                participant.model_dump_json(),
                max_participants,
                lease_ms(lease_s),
            ],
        )
        if result[0] == "full":
            raise VitrineError(ErrorCode.ROOM_FULL, "the room is full")
        return JoinOutcome(replaced=load_model(Participant, result[1]))

    async def remove_participant(self, room: str, sid: str) -> Participant | None:
        room_keys = [keys.participants_key(room), keys.identities_key(room), keys.leases_key(room)]
        return load_model(Participant, await self._remove_participant(keys=room_keys, args=[sid]))

    async def get_participant(self, room: str, sid: str) -> Participant | None:
        return load_model(Participant, await self._r.hget(keys.participants_key(room), sid))

    async def has_identity(self, room: str, identity: str) -> bool:
        return bool(await self._r.hexists(keys.identities_key(room), identity))

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
        return load_model(Track, raw)

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
