"""``Cascade``: one live room across several media workers (the mediasoup ``pipeToRouter`` idea).

A live room's origin is the worker ``ensure_worker`` chose: its host publishes there. A viewer
may instead be placed on another live worker, the one with the fewest participants
(``NodeRegistry.place_viewer``, which also counts viewers placed since the last heartbeats), and
that worker then relays: it pulls every published track from the origin over one peer connection
(``media/relay.py``) and forwards them to its own viewers. The offer and answer between the two
workers travel through here, over the same worker link as everything else; on the origin the relay
is a hidden subscriber that answers like a WHEP player. Relays are listed in the ``RoomStore``
(``relays_key``), so any signaling node reuses them. When the origin's tracks change, every relay
pulls again; when the room closes, its relays drop their copy; when a relay dies, the runtime's
watchdog sends its viewers to reconnect, and they are placed again.
"""

from __future__ import annotations

import logging

from signaling.policy import Policies
from signaling.state import State
from signaling.worker_link import WorkerLink
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Grants, Participant, Role, Room
from vitrine.core.state.locks import NamedLocks
from vitrine.core.wire.rpc import (
    CloseRoomCommand,
    JoinCommand,
    LeaveCommand,
    Negotiated,
    OfferCommand,
    RelayCommand,
    expect,
)

logger = logging.getLogger(__name__)

RELAY_GRANTS = Grants(can_subscribe=True, hidden=True)


def relay_sid(worker_id: str) -> str:
    """The origin's participant sid for one relay: fixed, so pulling again replaces the old connection."""
    return f"relay:{worker_id}"


def relayed(room: Room) -> Room:
    """A relay's copy of the room records nothing: the origin records."""
    return room.model_copy(update={"recording_id": None})


class Cascade:
    def __init__(self, state: State, link: WorkerLink, node_id: str, policies: Policies) -> None:
        self.state = state
        self.policies = policies  # which rooms relay, and whom
        self.link = link
        self.node_id = node_id
        self._locks = NamedLocks(state.locks, "the live room's relay is busy; try again")

    async def worker_for(self, room: Room, participant: Participant, origin: str) -> str:
        """Where ``participant`` is served: one its room's policy lets a relay serve (a live show's viewer) on
        the least loaded worker, anyone else on the origin."""
        if not self.policies.policy_for(room.kind).relayed(participant):
            return origin
        workers = [w for w in await self.state.nodes.live_workers() if w.takes_new() or w.id == origin]
        if len(workers) < 2:
            return origin
        chosen = (await self.state.nodes.place_viewer(workers)).id
        if chosen != origin:
            await self._ensure_relay(room, chosen, origin)
        return chosen

    async def _ensure_relay(self, room: Room, worker: str, origin: str) -> None:
        if worker in await self.state.rooms.list_relays(room.name):
            return
        async with self._locks.hold(f"relay:{room.name}:{worker}"):
            if worker not in await self.state.rooms.list_relays(room.name):
                await self._pull(room, worker, origin)
                await self.state.rooms.add_relay(room.name, worker)

    async def _pull(self, room: Room, worker: str, origin: str) -> None:
        """(Re)connect ``worker`` to the origin for every track published now (none: it waits)."""
        tracks = await self.state.rooms.list_tracks(room.name)
        copy = relayed(room)
        opened = expect(await self.link.call(worker, RelayCommand(room=copy, action="open", tracks=tracks)), Negotiated)
        if opened.offer is None:
            return  # nothing published yet: the relay serves its viewers once the host publishes
        relay = Participant(
            sid=relay_sid(worker),
            identity=f"relay-{worker}"[:128],
            role=Role.VIEWER,
            grants=RELAY_GRANTS,
            node_id=self.node_id,
        )
        expect(
            await self.link.call(origin, JoinCommand(room=room, participant=relay, auto_subscribe=False)), Negotiated
        )
        answered = expect(
            await self.link.call(origin, OfferCommand(room=room.name, sid=relay.sid, sdp=opened.offer.sdp)), Negotiated
        )
        if answered.answer is None:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "the origin did not answer the relay")
        expect(
            await self.link.call(
                worker,
                RelayCommand(
                    room=copy, action="answer", tracks=tracks, sdp=answered.answer.sdp, mids=answered.answer.mids
                ),
            ),
            Negotiated,
        )

    async def tracks_changed(self, room: Room) -> None:
        """The origin's tracks changed: every relay pulls the new set (its viewers renegotiate)."""
        if not self.policies.policy_for(room.kind).relays or room.worker_id is None:
            return
        for worker in await self.state.rooms.list_relays(room.name):
            try:
                async with self._locks.hold(f"relay:{room.name}:{worker}"):
                    await self._pull(room, worker, room.worker_id)
            except VitrineError as exc:
                logger.warning("relay %s of %s could not pull the new tracks: %s", worker, room.name, exc.message)

    async def drop(self, room: Room, worker: str) -> None:
        """Forget a relay (it died, or the room is closing); its viewers are sent to reconnect by the caller."""
        await self.state.rooms.remove_relay(room.name, worker)
        if room.worker_id is not None:
            try:
                await self.link.call(room.worker_id, LeaveCommand(room=room.name, sid=relay_sid(worker)))
            except VitrineError:
                pass  # the origin is gone too

    async def close(self, room: Room) -> None:
        for worker in await self.state.rooms.list_relays(room.name):
            try:
                await self.link.call(worker, CloseRoomCommand(room=room.name))
            except VitrineError:
                logger.warning("relay %s did not confirm closing room %s", worker, room.name)
