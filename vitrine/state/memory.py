"""In-process state for the embedded single-node server."""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict

from vitrine.errors import ErrorCode, VitrineError
from vitrine.models import Participant, Room, Track
from vitrine.state.base import JoinOutcome, MessageHandler, WorkerNode, placement_load, stamp

logger = logging.getLogger(__name__)


class MemoryRoomStore:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._participants: dict[str, dict[str, Participant]] = defaultdict(dict)
        self._tracks: dict[str, dict[str, Track]] = defaultdict(dict)
        self._relays: dict[str, set[str]] = defaultdict(set)
        self._knocks: dict[str, dict[str, str]] = defaultdict(dict)
        self._seq: dict[str, int] = defaultdict(int)
        self._locks: dict[str, tuple[str, float]] = {}

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
        return self._rooms.pop(name, None)

    async def add_participant(self, room: str, participant: Participant, max_participants: int) -> JoinOutcome:
        members = self._participants[room]
        replaced = next((p for p in members.values() if p.identity == participant.identity), None)
        if replaced is None and len(members) >= max_participants:
            raise VitrineError(ErrorCode.ROOM_FULL, "the room is full")
        if replaced is not None:
            del members[replaced.sid]
        members[participant.sid] = participant.model_copy()
        return JoinOutcome(replaced=replaced)

    async def remove_participant(self, room: str, sid: str) -> Participant | None:
        return self._participants.get(room, {}).pop(sid, None)

    async def get_participant(self, room: str, sid: str) -> Participant | None:
        return self._participants.get(room, {}).get(sid)

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

    async def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        now = time.monotonic()
        held = self._locks.get(name)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._locks[name] = (token, now + ttl_ms / 1000)
        return token

    async def release_lock(self, name: str, token: str) -> bool:
        held = self._locks.get(name)
        if held is None or held[0] != token:
            return False
        del self._locks[name]
        return True


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


class _MemorySubscription:
    def __init__(self, bus: MemoryEventBus, channel: str, handler: MessageHandler) -> None:
        self._bus, self._channel, self._handler = bus, channel, handler

    async def close(self) -> None:
        self._bus._handlers[self._channel].discard(self._handler)


class MemoryEventBus:
    """Delivers in publish order, on the caller's loop, like a single Redis connection would.

    A failing handler is logged and skipped, as on Redis: one bad subscriber
    never breaks the publisher or the others.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, set[MessageHandler]] = defaultdict(set)

    async def publish(self, channel: str, message: str) -> int:
        handlers = list(self._handlers.get(channel, ()))
        for handler in handlers:
            try:
                await handler(message)
            except Exception:
                logger.exception("event handler on %s failed", channel)
        return len(handlers)

    async def subscribe(self, channel: str, handler: MessageHandler) -> _MemorySubscription:
        self._handlers[channel].add(handler)
        return _MemorySubscription(self, channel, handler)
