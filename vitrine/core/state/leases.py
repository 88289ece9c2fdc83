"""``ParticipantLeases``: a participant stays in its room only while its signaling node renews its lease.

A participant's record in the ``RoomStore`` says who is in a room and counts against the room's capacity. Only
the signaling node that admitted it (its socket, its WHIP or WHEP session) ever removes it; a node that dies
with ``kill -9`` would leave its participants in every room forever. So each participant holds a lease, granted
by ``RoomStore.add_participant`` in the same atomic step as its admission and dropped by ``remove_participant``.
Its node renews the leases of every participant it holds (``renew``); any live node sweeps out those that ran
out (``expire``: the participant is removed in the same step, so a renewal racing the sweep either wins, and the
participant stays, or finds it gone). What the removal then means for the room (the worker frees the peer, the
others hear ``participant_left``) is ``signaling.rooms.RoomService.expire``'s.

Redis: one ZSET per room, ``keys.leases_key`` (sid -> the Redis server's time in ms when the lease runs out), in
the room's slot, so every script here touches one slot and reads one clock: the nodes' clocks never meet. A
renewal re-asserts the lease of any participant still on record, so a lease lost on its own (a partial loss of
Redis's contents) comes back at the next renewal; a participant the sweep removed is never put back.
"""

from __future__ import annotations

import time
from typing import Protocol

from vitrine.core.models import Participant
from vitrine.core.state import keys
from vitrine.core.state.redis_util import RedisClient

LEASE_S = 15.0  # a lease when the caller names none (the store's own tests); signaling passes its setting
EXPIRE_BATCH = 100  # participants one sweep of one room removes at most; the next sweep takes the rest


def lease_ms(lease_s: float) -> int:
    return max(1, int(lease_s * 1000))


class ParticipantLeases(Protocol):
    async def renew(self, room: str, sids: list[str], lease_s: float) -> list[str]:
        """Extend the leases of ``sids`` to ``lease_s`` from now; returns the sids that are no longer in the
        room (removed meanwhile, or expired while their node was too slow to renew)."""

    async def expire(self, room: str) -> list[Participant]:
        """Remove the room's participants whose lease ran out, each with its lease, atomically; returns them."""


class LeasedRooms(Protocol):
    """What the in-memory leases need of ``MemoryRoomStore``, which keeps the deadlines beside its members."""

    leases: dict[str, dict[str, float]]

    async def get_participant(self, room: str, sid: str) -> Participant | None: ...

    async def remove_participant(self, room: str, sid: str) -> Participant | None: ...


class MemoryParticipantLeases:
    """One process's leases. Nothing here awaits anything that yields, so each call is one step."""

    def __init__(self, rooms: LeasedRooms) -> None:
        self._rooms = rooms

    async def renew(self, room: str, sids: list[str], lease_s: float) -> list[str]:
        deadline = time.monotonic() + lease_s
        missing = []
        for sid in sids:
            if await self._rooms.get_participant(room, sid) is None:
                missing.append(sid)
            else:
                self._rooms.leases[room][sid] = deadline
        return missing

    async def expire(self, room: str) -> list[Participant]:
        now = time.monotonic()
        ran_out = [sid for sid, deadline in self._rooms.leases.get(room, {}).items() if deadline < now]
        expired = []
        for sid in ran_out[:EXPIRE_BATCH]:
            participant = await self._rooms.remove_participant(room, sid)
            if participant is not None:
                expired.append(participant)
        return expired


_NOW_MS = "local now = redis.call('TIME') local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)\n"

# KEYS: participants, leases. ARGV: lease ms, then sids. Renews the lease of each sid still on record (putting
# back one lost on its own); returns the sids not on record.
_RENEW = (
    _NOW_MS
    + """
local missing = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[1]), ARGV[i])
  else
    redis.call('ZREM', KEYS[2], ARGV[i])
    table.insert(missing, ARGV[i])
  end
end
return missing
"""
)

# KEYS: participants, identities, leases. ARGV: at most how many. Removes each participant whose lease ran out,
# as ``_REMOVE_PARTICIPANT`` does (the identity entry only if it still points at that sid); returns their JSON.
_EXPIRE = (
    _NOW_MS
    + """
local removed = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms - 1, 'LIMIT', 0, tonumber(ARGV[1]))) do
  redis.call('ZREM', KEYS[3], sid)
  local raw = redis.call('HGET', KEYS[1], sid)
  if raw then
    redis.call('HDEL', KEYS[1], sid)
    local identity = cjson.decode(raw)['identity']
    if redis.call('HGET', KEYS[2], identity) == sid then redis.call('HDEL', KEYS[2], identity) end
    table.insert(removed, raw)
  end
end
return removed
"""
)


class RedisParticipantLeases:
    def __init__(self, client: RedisClient) -> None:
        self._renew = client.register_script(_RENEW)
        self._expire = client.register_script(_EXPIRE)

    async def renew(self, room: str, sids: list[str], lease_s: float) -> list[str]:
        if not sids:
            return []
        lease_keys = [keys.participants_key(room), keys.leases_key(room)]
        return list(await self._renew(keys=lease_keys, args=[lease_ms(lease_s), *sids]))

    async def expire(self, room: str) -> list[Participant]:
        room_keys = [keys.participants_key(room), keys.identities_key(room), keys.leases_key(room)]
        raws = await self._expire(keys=room_keys, args=[EXPIRE_BATCH])
        return [Participant.model_validate_json(raw) for raw in raws]
