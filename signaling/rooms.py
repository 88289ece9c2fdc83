"""Room lifecycle and participant admission, shared by the REST API, WebSocket, WHIP and WHEP.

State changes go to the RoomStore, media changes to the room's worker, and
every visible change becomes a numbered RoomEvent on the room's channel.
Where kinds of rooms differ (who may enter, what is counted as people come
and go, what the worker must know of a participant), the service asks the
room's product through its policy (``signaling.policy``).

A room a join token created (``Room.ephemeral``) is removed once it has been
empty for ``empty_room_grace_s``; rooms of the REST API and of records stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from signaling.admission import Admission
from signaling.cascade import Cascade, relayed
from signaling.placement import ensure_worker
from signaling.policy import Policies
from signaling.state import State
from signaling.worker_link import QueueListener, WorkerLink
from vitrine.core import logs
from vitrine.core.auth import JoinClaims
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, ParticipantView, Room, Track, now_ms
from vitrine.core.state import keys
from vitrine.core.tasks import TaskSet
from vitrine.core.text import clean_text
from vitrine.core.wire.rpc import (
    AdmitCommand,
    CloseRoomCommand,
    GoneReason,
    JoinCommand,
    Kick,
    LeaveCommand,
    Negotiated,
    Refused,
    RoomBusMessage,
    WorkerCommand,
    expect,
)
from vitrine.core.wire.rtc import (
    Knock,
    KnockPush,
    LeaveCode,
    LogEntry,
    LogPush,
    RoomEvent,
    RoomEventKind,
    ServerOfferMessage,
    TrackRequest,
)

logger = logging.getLogger(__name__)


def new_participant_sid() -> str:
    return "PA_" + secrets.token_urlsafe(9)


@dataclass
class Prejoin:
    """A knocker's connection, set up on the room's worker while it waits (``RoomService.prejoin``)."""

    participant: Participant
    worker_id: str
    offer: ServerOfferMessage | None


RoomSource = Callable[[str], Awaitable[Room | None]]  # a room's name -> the room its record wants


class RoomService:
    def __init__(self, settings: Settings, state: State, link: WorkerLink, policies: Policies) -> None:
        self._sources: list[RoomSource] = []
        self.policies = policies  # where the kinds of rooms differ: their products answer
        self.settings = settings
        self.state = state
        self.link = link
        self.cascade = Cascade(state, link, settings.node_id, policies)
        self._emptied = TaskSet()  # ephemeral rooms waiting out their grace
        self._held: dict[str, dict[str, str]] = {}  # room -> sid -> identity: the leases this node renews

    async def stop(self) -> None:
        await self._emptied.cancel()

    # -- rooms -------------------------------------------------------------------

    async def create_room(self, room: Room) -> Room:
        if not await self.state.rooms.create_room(room):
            raise VitrineError(ErrorCode.ROOM_EXISTS, f"room {room.name!r} already exists")
        return room

    def restore_from(self, source: RoomSource) -> None:
        """Register a record that can say a room should exist: a live show, an open case, a call."""
        self._sources.append(source)

    async def find_room(self, name: str) -> Room | None:
        """The room; or, when coordination has no such room (the embedded server restarted, Redis came back
        empty) but a record says it should exist, the room put back as that record describes it."""
        room = await self.state.rooms.get_room(name)
        if room is not None:
            return room
        for source in self._sources:
            if (wanted := await source(name)) is not None:
                if await self.state.rooms.create_room(wanted):
                    logger.info("room %s put back from its record", name)
                return await self.state.rooms.get_room(name)
        return None

    async def get_room(self, name: str) -> Room:
        room = await self.find_room(name)
        if room is None:
            raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "no such room")
        return room

    async def close_room(
        self, name: str, *, reason: str = "the room was closed", code: LeaveCode | None = None, keep_log: bool = False
    ) -> Room:
        """Close a room: its worker drops it, everyone is disconnected. A show keeps its log (the replay)."""
        room = await self.get_room(name)
        if room.worker_id:
            try:
                await self.link.call(room.worker_id, CloseRoomCommand(room=name))
            except VitrineError:
                logger.warning("worker did not confirm closing room %s", name)
        await self.cascade.close(room)
        for knock in await self.knocks(name):  # a knocker waits for nothing any more: it is turned away
            with contextlib.suppress(VitrineError):
                await self._end_knock(name, knock.id, "denied")
        await self.emit(name, "room_closed")
        for participant in await self.state.rooms.list_participants(name):
            await self.kick(name, participant.sid, reason, code=code)
        await self.state.rooms.delete_room(name)
        if not keep_log:
            await self.state.records.roomlog.drop(name)
        return room

    # -- participants --------------------------------------------------------------

    async def admit(
        self,
        claims: JoinClaims,
        *,
        publish: list[TrackRequest],
        name: str | None,
        node_id: str,
        auto_subscribe: bool = True,
        prejoined: Prejoin | None = None,
        on_queued: QueueListener | None = None,
    ) -> Admission:
        """Let the participant in; ``on_queued`` hears its place in line while its worker is busy with other
        joins' handshakes (``media/admission.py``)."""
        logs.bind(room=claims.room)
        room = await self.find_room(claims.room)
        if room is None:
            if not claims.grants.room_create:
                raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "no such room, and this token may not create it")
            await self.state.rooms.create_room(
                Room(
                    name=claims.room,
                    kind=self.policies.kind_for(claims.role),
                    shop=claims.shop,
                    max_participants=self.settings.max_participants_per_room,
                    ephemeral=True,
                )
            )
            room = await self.get_room(claims.room)
        await self._may_enter(room, claims)
        self._may_publish(claims, publish)
        policy = self.policies.policy_for(room.kind)
        participant = prejoined.participant if prejoined else self._participant(claims, name, node_id)
        logs.bind(participant=participant.sid)
        outcome = await self.state.rooms.add_participant(
            room.name, participant, room.max_participants, self.settings.participant_lease_s
        )
        self._hold(room.name, participant)
        if outcome.replaced is not None:
            self._let_go(room.name, outcome.replaced.sid)
        try:
            worker_id = await ensure_worker(self.state.coordination, room)
            target = await self.cascade.worker_for(room, participant, worker_id)  # a live viewer: maybe a relay
            reply = (
                await self._let_in(prejoined, room.name, target)
                if prejoined and target == prejoined.worker_id
                else None
            )
            if reply is None:
                with self.link.in_line(participant.sid, on_queued):
                    joined = await self.link.call(
                        target,
                        JoinCommand(
                            room=room if target == worker_id else relayed(room),
                            participant=participant,
                            publish=publish,
                            auto_subscribe=auto_subscribe,
                            evidence=policy.evidence(room, participant),
                        ),
                    )
                reply = expect(joined, Negotiated)
        except BaseException:
            await self.state.rooms.remove_participant(room.name, participant.sid)
            self._let_go(room.name, participant.sid)
            if outcome.replaced is not None:  # the older session is still connected: keep its record
                await self.state.rooms.add_participant(
                    room.name, outcome.replaced, room.max_participants, self.settings.participant_lease_s
                )
                if outcome.replaced.node_id == self.settings.node_id:  # else its own node renews it still
                    self._hold(room.name, outcome.replaced)
            await self._remove_when_empty(room.name)
            raise
        room.worker_id = worker_id
        if outcome.replaced is not None:
            await self.kick(room.name, outcome.replaced.sid, "the same identity joined elsewhere", code="replaced")
            await self._depart(room.name, outcome.replaced, target)
        if not participant.grants.hidden:
            await self.emit(room.name, "participant_joined", participant=participant)
        await self.apply_tracks(room.name, reply)  # an admitted knocker's publications, already flowing in
        await policy.admitted(room, participant, replaced=outcome.replaced is not None)
        logger.info("participant joined as %s, on worker %s", participant.role.value, target)
        return Admission(room=room, participant=participant, worker_id=target, reply=reply)

    def _may_publish(self, claims: JoinClaims, publish: list[TrackRequest]) -> None:
        """Refuse what the worker would refuse before touching the room's records."""
        if publish and not claims.grants.can_publish:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
        if len(publish) > self.settings.max_tracks_per_participant:
            raise VitrineError(
                ErrorCode.TOO_MANY_TRACKS, f"at most {self.settings.max_tracks_per_participant} published tracks"
            )

    @staticmethod
    def _participant(claims: JoinClaims, name: str | None, node_id: str) -> Participant:
        return Participant(
            sid=new_participant_sid(),
            identity=claims.sub,
            role=claims.role,
            grants=claims.grants,
            name=name or claims.name,
            node_id=node_id,
        )

    async def _let_in(self, prejoined: Prejoin, room: str, worker_id: str) -> Negotiated | None:
        """Admit a prejoined knocker on its worker; None when that worker lost it (it joins afresh instead)."""
        reply = await self.link.call(worker_id, AdmitCommand(room=room, sid=prejoined.participant.sid))
        match reply:
            case Refused(message=message):
                logger.info("a prejoined knocker of %s joins afresh: %s", room, message)
                return None
            case _:
                return expect(reply, Negotiated)

    async def _may_enter(self, room: Room, claims: JoinClaims) -> None:
        if room.shop != claims.shop:  # another tenant's room (or one created meanwhile): not even its existence shows
            raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "no such room")
        if room.closed:
            raise VitrineError(ErrorCode.ROOM_CLOSED, "the room is closed")
        await self.policies.policy_for(room.kind).may_enter(room, claims.sub)

    # -- knock and admit -------------------------------------------------------------

    async def knock(self, claims: JoinClaims, name: str | None) -> Knock:
        """A knock at an existing room's door: checked like a join, but nothing joins (no participant record,
        no worker session). ``announce_knock`` tells the room's admins once the knocker listens for the answer."""
        room = await self.get_room(claims.room)
        await self._may_enter(room, claims)
        knock_id = "KN_" + secrets.token_urlsafe(9)
        return Knock(
            id=knock_id,
            at_ms=now_ms(),
            participant=ParticipantView(sid=knock_id, identity=claims.sub, role=claims.role, name=name or claims.name),
        )

    async def prejoin(
        self, claims: JoinClaims, *, publish: list[TrackRequest], name: str | None, node_id: str
    ) -> Prejoin:
        """Set up a knocker's connection on the room's worker while it waits, so an admit finds its media
        flowing. The worker keeps it apart: it subscribes to nothing, and nothing it sends is forwarded or
        recorded, until ``admit(prejoined=...)``. It has no participant record: the room does not see it."""
        room = await self.get_room(claims.room)
        self._may_publish(claims, publish)
        participant = self._participant(claims, name, node_id)
        worker_id = await ensure_worker(self.state.coordination, room)
        reply = expect(
            await self.link.call(
                worker_id,
                JoinCommand(
                    room=room,
                    participant=participant,
                    publish=publish,
                    admitted=False,
                    evidence=self.policies.policy_for(room.kind).evidence(room, participant),
                ),
            ),
            Negotiated,
        )
        return Prejoin(participant=participant, worker_id=worker_id, offer=reply.offer)

    async def drop_prejoin(self, room: str, prejoin: Prejoin) -> None:
        """A knocker denied, or gone: its connection on the worker goes."""
        with contextlib.suppress(VitrineError):
            await self.link.call(prejoin.worker_id, LeaveCommand(room=room, sid=prejoin.participant.sid))

    async def announce_knock(self, room: str, knock: Knock) -> None:
        """Store the knock and tell the room's admins, unless the room's product answers knocks itself
        (``RoomPolicy.knocks_shown``); a knock the product already said yes to is let in at once."""
        await self.state.rooms.add_knock(room, knock.id, knock.model_dump_json())
        record = await self.get_room(room)
        policy = self.policies.policy_for(record.kind)
        if policy.knocks_shown:
            await self._publish_knock(room, KnockPush(knock=knock))
        if await policy.admits_at_once(record, knock):
            with contextlib.suppress(VitrineError):  # answered meanwhile: only the first answer counts
                await self._end_knock(room, knock.id, "admitted")

    async def settle_knock(self, admission: Admission, knock_id: str, admit: bool) -> Knock:
        """A room admin's answer; only the first answer to a knock counts. Knocks its product answers itself
        are not the admins' to answer (they never saw them)."""
        if not admission.participant.grants.room_admin:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "only the room's admins admit")
        if not self.policies.policy_for(admission.room.kind).knocks_shown:
            raise VitrineError(ErrorCode.KNOCK_NOT_FOUND, "nobody is knocking with that id (answered, or gone)")
        return await self._end_knock(admission.room.name, knock_id, "admitted" if admit else "denied")

    async def answer_knock(self, room: str, identity: str, admit: bool) -> Knock | None:
        """The room's product answers the knock of ``identity`` itself (a consult's accept admits the shopper
        whose connection was set up while the agent's console rang); None: nobody of that identity knocks."""
        for knock in await self.knocks(room):
            if knock.participant.identity == identity:
                with contextlib.suppress(VitrineError):  # answered, or gone, meanwhile
                    return await self._end_knock(room, knock.id, "admitted" if admit else "denied")
        return None

    async def cancel_knock(self, room: str, knock_id: str) -> None:
        """The knocker left before an answer."""
        with contextlib.suppress(VitrineError):
            await self._end_knock(room, knock_id, "left")

    async def knocks(self, room: str) -> list[Knock]:
        return [Knock.model_validate_json(raw) for raw in await self.state.rooms.list_knocks(room)]

    async def _end_knock(self, room: str, knock_id: str, ended: Literal["admitted", "denied", "left"]) -> Knock:
        raw = await self.state.rooms.take_knock(room, knock_id)
        if raw is None:
            raise VitrineError(ErrorCode.KNOCK_NOT_FOUND, "nobody is knocking with that id (answered, or gone)")
        knock = Knock.model_validate_json(raw)
        await self._publish_knock(room, KnockPush(knock=knock, ended=ended))
        return knock

    async def _publish_knock(self, room: str, push: KnockPush) -> None:
        await self._post(room, push)

    async def run(self, admission: Admission, command: WorkerCommand) -> Negotiated:
        """Send a participant's command to its worker and publish what changed."""
        reply = expect(await self.link.call(admission.worker_id, command), Negotiated)
        await self.apply_tracks(admission.room.name, reply)
        return reply

    async def apply_tracks(self, room: str, reply: Negotiated) -> None:
        for track in reply.published:
            await self.state.rooms.add_track(room, track)
            await self.emit(room, "track_published", track=track)
        for track in reply.unpublished:
            await self._drop_track(room, track)
        if reply.published or reply.unpublished:
            await self._tracks_changed(room)

    async def _tracks_changed(self, room: str) -> None:
        record = await self.state.rooms.get_room(room)
        if record is not None:  # a live room's relays pull the new set (the cascade serves no other kind)
            await self.cascade.tracks_changed(record)

    async def leave(self, admission: Admission, *, freed: bool = False) -> None:
        """The participant leaves; ``freed``: its worker already let it go (its peer connection is gone).
        Whoever gets here first (the session, a WHIP/WHEP DELETE, the worker's news) makes the leave; a later
        one finds no record and changes nothing, so the leave is announced and counted once."""
        participant = admission.participant
        if not await self._depart(admission.room.name, participant, None if freed else admission.worker_id):
            return
        await self.policies.policy_for(admission.room.kind).left(admission.room, participant)

    async def peer_gone(self, room: str, sid: str, reason: GoneReason) -> None:
        """A worker freed a participant whose peer connection ended (``PeerGone``): its session, if it
        has one, is closed with a reconnect hint, and it leaves the room, announced to the others. A WHIP or
        WHEP client that vanished without DELETE is cleaned up only this way."""
        participant = await self.state.rooms.get_participant(room, sid)
        record = await self.state.rooms.get_room(room)
        if participant is None or record is None:
            return
        await self.kick(room, sid, f"your media connection ended ({reason.value})", reconnect=True)
        await self.leave(Admission(room=record, participant=participant, worker_id=record.worker_id or ""), freed=True)

    async def _depart(self, room: str, participant: Participant, worker_id: str | None) -> bool:
        """Take the participant out of the room (and off ``worker_id``, unless None: the worker let it go);
        True if this removed its record."""
        unpublished = await self._off_worker(room, participant.sid, worker_id) if worker_id is not None else []
        removed = await self.state.rooms.remove_participant(room, participant.sid)
        self._let_go(room, participant.sid)
        await self._departed(room, participant, unpublished, announce=removed is not None)
        return removed is not None

    async def _off_worker(self, room: str, sid: str, worker_id: str) -> list[Track]:
        """Free ``sid`` on ``worker_id``; the tracks that unpublished (none if the worker is gone)."""
        with contextlib.suppress(VitrineError):  # the worker is gone: the caller drops its tracks from the store
            match await self.link.call(worker_id, LeaveCommand(room=room, sid=sid)):
                case Negotiated(unpublished=tracks):
                    return tracks
        return []

    async def _departed(self, room: str, participant: Participant, unpublished: list[Track], announce: bool) -> None:
        """What follows a participant's removal: its tracks go, the relays pull again, and (``announce``: this
        caller removed its record) the room hears of it and may become empty."""
        gone = [t for t in await self.state.rooms.list_tracks(room) if t.participant_sid == participant.sid]
        for track in [*unpublished, *gone]:  # gone: the worker is gone, clean up its tracks
            await self._drop_track(room, track)
        if unpublished or gone:
            await self._tracks_changed(room)
        if announce and not participant.grants.hidden:
            await self.emit(room, "participant_left", participant=participant)
        if announce:
            await self._remove_when_empty(room)

    # -- leases (``vitrine.core.state.leases``) ---------------------------------------------

    def _hold(self, room: str, participant: Participant) -> None:
        self._held.setdefault(room, {})[participant.sid] = participant.identity

    def _let_go(self, room: str, sid: str) -> None:
        held = self._held.get(room)
        if held is not None:
            held.pop(sid, None)
            if not held:
                del self._held[room]

    def forget_leases(self) -> None:
        """Coordination state was lost, and the leases with it: renew none of them, and send nobody away for a
        lost lease, since the rebuild sends every session to reconnect once a worker is back
        (``Runtime.rebuild_coordination``); the sessions hold new leases when they join again."""
        self._held.clear()

    async def renew_leases(self) -> None:
        """Renew the lease of every participant this node admitted and still holds. One found gone was expired
        while this node was too slow to renew (a long pause): its session is sent to reconnect, unless its room
        is gone (its close told the session) or the same identity is in again (a newer session replaced it)."""
        for room, held in list(self._held.items()):
            missing = await self.state.coordination.leases.renew(room, list(held), self.settings.participant_lease_s)
            for sid in missing:
                identity = held.get(sid)
                self._let_go(room, sid)
                if identity is None or await self.state.rooms.get_room(room) is None:
                    continue
                if not await self.state.rooms.has_identity(room, identity):
                    logger.warning("participant %s of %s lost its lease; its session is sent to reconnect", sid, room)
                    await self.kick(room, sid, "your session expired; join again", reconnect=True)

    async def expire_leases(self) -> int:
        """Remove every participant whose lease ran out (its node died), in every room; how many went."""
        count = 0
        for room in await self.state.rooms.list_rooms():
            for participant in await self.state.coordination.leases.expire(room.name):
                try:
                    await self.expire(room, participant)
                except Exception:  # it is out of the store already: the others' departures still go on
                    logger.exception("the departure of expired participant %s failed", participant.sid)
                count += 1
        return count

    async def expire(self, room: Room, participant: Participant) -> None:
        """A participant whose lease ran out was removed: free it on the room's workers, tell its session (if
        its node is alive after all) to reconnect, and tell the room, as any leave does."""
        logger.warning(
            "participant %s of %s expired: its node %s stopped renewing",
            participant.sid,
            room.name,
            participant.node_id,
        )
        self._let_go(room.name, participant.sid)
        unpublished: list[Track] = []
        if room.worker_id is not None:
            unpublished = await self._off_worker(room.name, participant.sid, room.worker_id)
        for relay in await self.state.rooms.list_relays(room.name):  # a live viewer may be served by a relay
            await self._off_worker(room.name, participant.sid, relay)
        await self.kick(room.name, participant.sid, "your session expired; join again", reconnect=True)
        await self._departed(room.name, participant, unpublished, announce=True)
        await self.policies.policy_for(room.kind).left(room, participant)

    async def _remove_when_empty(self, name: str) -> None:
        """An ephemeral room nobody is in any more is removed after the grace, unless meanwhile someone came
        (its event numbering moved on), a record came to own it, or it was created again."""
        room = await self.state.rooms.get_room(name)
        if room is None or not room.ephemeral or await self.state.rooms.list_participants(name):
            return
        self._emptied.spawn(self._remove_after_grace(room, await self.state.rooms.current_seq(name)))

    async def _remove_after_grace(self, emptied: Room, seq: int) -> None:
        await asyncio.sleep(self.settings.empty_room_grace_s)
        name = emptied.name
        try:
            room = await self.state.rooms.get_room(name)
            if (
                room is None
                or room.created_at_ms != emptied.created_at_ms
                or await self.state.rooms.current_seq(name) != seq
                or await self.state.rooms.list_participants(name)
            ):
                return
            for source in self._sources:
                if await source(name) is not None:
                    return
            await self.close_room(name, reason="the room was empty")
            logger.info("removed the empty room %s", name)
        except VitrineError:
            return  # closed meanwhile
        except Exception:
            logger.exception("removing the empty room %s failed", name)

    async def _drop_track(self, room: str, track: Track) -> None:
        if await self.state.rooms.remove_track(room, track.sid) is not None:
            await self.emit(room, "track_unpublished", track=track)

    # -- events --------------------------------------------------------------------

    async def emit(
        self, room: str, kind: RoomEventKind, *, participant: Participant | None = None, track: Track | None = None
    ) -> RoomEvent:
        event = RoomEvent(
            seq=await self.state.rooms.next_seq(room),
            event=kind,
            track=track,
            participant=ParticipantView.of(participant) if participant else None,
        )
        await self._post(room, event)
        return event

    async def chat(
        self,
        admission: Admission,
        text: str,
        *,
        keep: int,
        stored: Callable[[LogEntry], Awaitable[None]] | None = None,
    ) -> LogEntry:
        """Append to the room's log (which keeps ``keep`` entries: the room's policy says how many), then tell
        every session in the room (the sender too)."""
        if not admission.participant.grants.can_chat:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not chat")
        return await self.append_log(
            admission.room.name,
            LogEntry(
                seq=0, participant=ParticipantView.of(admission.participant), text=clean_text(text), at_ms=now_ms()
            ),
            keep=keep,
            stored=stored,
        )

    async def append_log(
        self,
        room: str,
        entry: LogEntry,
        *,
        keep: int,
        stored: Callable[[LogEntry], Awaitable[None]] | None = None,
    ) -> LogEntry:
        """Number and store a log entry (and run ``stored``: writes that must be durable before anyone hears
        of the entry), then publish it to the room's sessions on every node."""
        entry = await self.state.records.roomlog.append(room, entry, keep)
        if stored is not None:
            await stored(entry)
        await self._post(room, LogPush(entry=entry))
        return entry

    async def kick(
        self, room: str, sid: str, reason: str, reconnect: bool = False, code: LeaveCode | None = None
    ) -> None:
        await self._post(room, Kick(sid=sid, reason=reason, reconnect=reconnect, code=code))

    async def _post(self, room: str, message: RoomBusMessage) -> None:
        """Publish on the room's channel, to its sessions on every node (``SessionHub`` reads it)."""
        await self.state.bus.publish(keys.room_events_channel(room), message.model_dump_json())

    async def snapshot(self, room: str) -> tuple[list[Participant], list[Track], int]:
        seq = await self.state.rooms.current_seq(room)
        participants = [p for p in await self.state.rooms.list_participants(room) if not p.grants.hidden]
        return participants, await self.state.rooms.list_tracks(room), seq
