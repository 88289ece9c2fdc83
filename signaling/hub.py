"""The sessions connected to this signaling node, and the room channels they listen on.

Room events and kicks arrive on a room's bus channel (from any node); worker
offers arrive through the worker link. The hub hands each to the local
session it concerns. A room is an audience over ``ChannelHub``: the hub keeps
who listens here and what a message means to them, and the channel hub keeps
each room's channel subscribed once, for as long as anyone here listens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol, assert_never

from signaling.channels import ChannelHub
from vitrine.core.models import Room
from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus
from vitrine.core.wire.rpc import Kick, PeerOffer, room_bus_adapter
from vitrine.core.wire.rtc import KnockPush, LogEntry, LogPush, RoomEvent, ServerMessage, ServerOfferMessage

logger = logging.getLogger(__name__)


class LocalSession(Protocol):
    async def on_event(self, event: RoomEvent) -> None: ...

    async def on_offer(self, offer: ServerOfferMessage) -> None: ...

    async def on_kick(self, kick: Kick) -> None: ...

    async def on_log(self, entry: LogEntry) -> None: ...

    def send(self, message: ServerMessage) -> None: ...

    async def on_knock_answered(self, push: KnockPush) -> None:
        """This session's own knock was admitted or denied."""

    @property
    def room_admin(self) -> bool:
        """Whether the session is joined with ``room_admin`` (it is told about knocks)."""

    @property
    def worker_id(self) -> str | None:
        """The media worker serving this session (a live room's viewer may be on a relay)."""

    @property
    def room_record(self) -> Room | None:
        """The room as the session was admitted to it: what rebuilds it after a loss of coordination state."""


class SessionHub:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.sessions: dict[str, LocalSession] = {}
        self.rooms: dict[str, set[str]] = {}
        self.knockers: dict[str, tuple[str, LocalSession]] = {}  # knock id -> (room, the knocking session)
        self._channels = ChannelHub(bus, keys.room_events_channel, self._on_room_message)

    async def attach(self, room: str, sid: str, session: LocalSession) -> None:
        """Register before the room snapshot is read, so no event falls in between."""
        self.sessions[sid] = session
        members = self.rooms.setdefault(room, set())
        members.add(sid)
        await self._channels.join(room, ("session", sid))

    async def wait_at_door(self, room: str, knock_id: str, session: LocalSession) -> None:
        """A knocker listens for its answer (and nothing else of the room) before its knock is announced."""
        self.knockers[knock_id] = (room, session)
        await self._channels.join(room, ("knock", knock_id))

    async def leave_door(self, room: str, knock_id: str) -> None:
        self.knockers.pop(knock_id, None)
        await self._channels.leave(room, ("knock", knock_id))

    async def detach(self, room: str, sid: str) -> None:
        self.sessions.pop(sid, None)
        members = self.rooms.get(room)
        if members is None:
            return
        members.discard(sid)
        if not members:
            del self.rooms[room]
        await self._channels.leave(room, ("session", sid))

    async def _on_room_message(self, room: str, raw: str) -> None:
        message = room_bus_adapter.validate_json(raw)
        match message:
            case Kick() as kick:
                session = self.sessions.get(kick.sid)
                if session is not None:
                    await session.on_kick(kick)
            case KnockPush() as push:
                await self._on_knock(room, push)
            case RoomEvent() as event:
                for session in self._in(room):
                    await session.on_event(event)
            case LogPush(entry=entry):
                for session in self._in(room):
                    await session.on_log(entry)
            case _:
                assert_never(message)

    def _in(self, room: str) -> Iterator[LocalSession]:
        """This node's sessions in ``room``, each looked up as its turn comes: one that left while an earlier
        one was handed the message is skipped."""
        for sid in list(self.rooms.get(room, ())):
            session = self.sessions.get(sid)
            if session is not None:
                yield session

    async def _on_knock(self, room: str, push: KnockPush) -> None:
        for sid in list(self.rooms.get(room, ())):
            session = self.sessions.get(sid)
            if session is not None and session.room_admin:
                session.send(push)
        knocker = self.knockers.get(push.knock.id)
        if push.ended in ("admitted", "denied") and knocker is not None:
            await knocker[1].on_knock_answered(push)

    async def on_offer(self, push: PeerOffer) -> None:
        """An offer the worker started goes to the participant's session, if it is still on this node."""
        session = self.sessions.get(push.sid)
        if session is not None:
            await session.on_offer(push.offer)

    async def send_local(self, room: str, message: ServerMessage) -> None:
        """Send to this node's sessions in ``room`` (what every node computes for itself, like live counts)."""
        for sid in list(self.rooms.get(room, ())):
            session = self.sessions.get(sid)
            if session is not None:
                session.send(message)

    def local_rooms(self) -> list[str]:
        return list(self.rooms)

    def local_room_records(self) -> list[Room]:
        """The rooms this node's sessions are in, as they were admitted to them."""
        records: dict[str, Room] = {}
        for sid in [sid for members in self.rooms.values() for sid in members]:
            session = self.sessions.get(sid)
            if session is not None and (room := session.room_record) is not None:
                records.setdefault(room.name, room)
        return list(records.values())

    async def send_knockers_away(self, reason: str) -> None:
        """Close every knock waiting on this node, asking the knocker to knock again."""
        for knock_id, (_, session) in list(self.knockers.items()):
            await session.on_kick(Kick(sid=knock_id, reason=reason, reconnect=True))

    async def kick_local(self, room: str, kick_reason: str, reconnect: bool, worker: str | None = None) -> None:
        """Close this node's sessions in ``room`` (only those served by ``worker``, when given)."""
        for sid in list(self.rooms.get(room, ())):
            session = self.sessions.get(sid)
            if session is not None and (worker is None or session.worker_id == worker):
                await session.on_kick(Kick(sid=sid, reason=kick_reason, reconnect=reconnect))
