"""The media worker: rooms of peer sessions and the tracks forwarded between them.

Signaling drives it with ``WorkerCommand``s (directly when embedded, over
Redis when scaled). Commands for one room run one at a time, so negotiation
steps never interleave (a snapshot, which waits for a keyframe, runs beside
them). Offers the worker starts itself (a new track to subscribe to) and an
inspection buyer's stored photos (``media/evidence_channel.py``) leave through
``push``.

A peer connection that ends without a leave (closed by its client, failed, ICE
consent expired, or silent for ``peer_silence_s``: ``PeerSession.report_gone``)
is freed here as a leave would free it, and signaling is told (``OfferPush.gone``)
so the participant's leave is announced, whatever its socket does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from media import taps
from media.evidence_channel import EvidenceTarget
from media.forwarder import UpTrack
from media.peer import PeerSession
from media.recorder import Recording
from media.relay import RelayIn
from media.snapshot import take_snapshot
from vitrine.core.artifacts import CASE_ID, ArtifactStore
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Role, Room, RoomKind, TrackKind, TrackSource
from vitrine.core.state.nodes import WorkerNode, WorkerState
from vitrine.core.tasks import TaskSet
from vitrine.core.wire.inspect import Artifact, ArtifactKind, case_of_room
from vitrine.core.wire.rpc import (
    AdmitCommand,
    AnswerCommand,
    CandidateCommand,
    CloseRoomCommand,
    DrainCommand,
    GoneReason,
    JoinCommand,
    LeaveCommand,
    OfferCommand,
    OfferPush,
    PublishCommand,
    RecordCommand,
    RecordingInfo,
    RelayCommand,
    ServerOfferMessage,
    SnapshotCommand,
    UnpublishCommand,
    WorkerCommand,
    WorkerReply,
)

logger = logging.getLogger(__name__)

Push = Callable[[OfferPush], Awaitable[None]]
# What reaches a room's lock: every WorkerCommand but those ``handle`` answers first.
RoomCommand = (
    OfferCommand
    | AnswerCommand
    | CandidateCommand
    | PublishCommand
    | UnpublishCommand
    | LeaveCommand
    | CloseRoomCommand
    | RecordCommand
    | AdmitCommand
)


@dataclass
class WorkerRoom:
    name: str
    peers: dict[str, PeerSession] = field(default_factory=dict)
    ups: dict[str, UpTrack] = field(default_factory=dict)
    auto_subscribe: dict[str, bool] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    relay: RelayIn | None = None  # on a relay worker: the pull of the live room's tracks from its origin
    # Knockers (JoinCommand.admitted false): connected and receiving their publications, which stay in the
    # peer and reach nobody (not forwarded, not recorded), subscribed to nothing, until AdmitCommand.
    waiting: dict[str, PeerSession] = field(default_factory=dict)
    kind: RoomKind = RoomKind.CONSULT  # as the joins' Room says: an inspection's evidence goes to its case
    shop: str | None = None


def _playable(room: WorkerRoom, peer: PeerSession, publisher: str | None) -> Callable[[str], list[UpTrack]]:
    """What a client offer's receive-only m-lines may be bound to, by kind.

    Published tracks of the room that are not the peer's own; only those of the
    ``publisher`` identity when one is named (WHEP ``?participant=``: in a
    consult, a client's WHEP session must not bind its own WHIP video).
    """
    if not peer.participant.grants.can_subscribe:
        return lambda kind: []
    if publisher is None:  # anyone's, relayed tracks included (their publisher is on the origin worker)
        return lambda kind: [
            u for u in room.ups.values() if u.track.kind.value == kind and u.track.participant_sid != peer.sid
        ]
    sources = {sid for sid, p in room.peers.items() if sid != peer.sid and p.participant.identity == publisher}
    return lambda kind: [
        u for u in room.ups.values() if u.track.kind.value == kind and u.track.participant_sid in sources
    ]


def _inspection_case(room: Room | WorkerRoom) -> tuple[str, str] | None:
    """(shop, case) of an inspection room: its photos and snapshots go in that case's folder."""
    case = case_of_room(room.name)
    if room.kind != RoomKind.INSPECTION or room.shop is None or case is None or not CASE_ID.match(case):
        return None
    return room.shop, case


def _record_track(recording: Recording, room: WorkerRoom, up: UpTrack) -> None:
    """Attach a published track, unless the recording keeps to another identity (an inspection's buyer)."""
    if recording.identity is not None:
        peer = room.peers.get(up.track.participant_sid)
        if peer is None or peer.participant.identity != recording.identity:
            return
    recording.attach(up)


class MediaWorker:
    def __init__(self, settings: Settings, worker_id: str, push: Push) -> None:
        self.settings = settings
        self.id = worker_id
        self.push = push
        self.rooms: dict[str, WorkerRoom] = {}
        # By room name, not in WorkerRoom: a recording outlives its room emptying on this worker (OBS
        # reconnecting over WHIP) and ends only with a stop, the room's close or the worker's.
        self.recordings: dict[str, Recording] = {}
        self.evidence = ArtifactStore(settings.evidence_dir)
        self._freeing = TaskSet()  # gone peers being freed
        self.state = WorkerState.SERVING  # announced with every heartbeat; media/drain.py moves it on
        self.on_drain: Callable[[], None] | None = None  # starts the drain a ``DrainCommand`` asks for
        self._silence_watch: asyncio.Task[None] | None = None  # started with the first join
        taps.configure_host_candidates(settings.rtc_interfaces, settings.rtc_port_min, settings.rtc_port_max)
        taps.DatagramGuard.install()
        taps.HandshakeAccelerator.install()
        taps.LeanAiortc.install()

    async def handle(self, command: WorkerCommand) -> WorkerReply:
        """Run one command; every failure comes back as a typed reply, never an exception."""
        try:
            if isinstance(command, DrainCommand):
                return self._drain_requested()
            if isinstance(command, JoinCommand):
                return await self._join(command)
            if isinstance(command, RelayCommand):
                return await self._relay(command)
            room = self.rooms.get(command.room)
            if room is None:
                if isinstance(command, CloseRoomCommand):
                    return WorkerReply(recording=await self._end_recording(command.room))
                if isinstance(command, LeaveCommand):
                    return WorkerReply()
                if isinstance(command, RecordCommand) and command.action == "stop":
                    return await self._record(None, command)
                raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "the room is not on this worker")
            if isinstance(command, SnapshotCommand):  # waits for a keyframe: not under the room's lock
                return WorkerReply(artifact=await self._snapshot(room, command.identity))
            async with room.lock:
                return await self._dispatch(room, command)
        except VitrineError as exc:
            return WorkerReply(error=exc.code, message=exc.message)
        except taps.PortRangeExhausted:
            logger.warning("media port range exhausted")
            return WorkerReply(error=ErrorCode.NO_MEDIA_WORKER, message="the media worker has no free UDP port")
        except Exception:
            logger.exception("media worker failed on %s", type(command).__name__)
            return WorkerReply(error=ErrorCode.INTERNAL, message="media worker error")

    async def _dispatch(self, room: WorkerRoom, command: RoomCommand) -> WorkerReply:
        if isinstance(command, CloseRoomCommand):
            return await self._close_room(room)
        if isinstance(command, RecordCommand):
            return await self._record(room, command)
        peer = room.peers.get(command.sid)
        if peer is None and command.sid in room.waiting:
            return await self._knocker(room, room.waiting[command.sid], command)
        if peer is None:
            if isinstance(command, LeaveCommand):
                return WorkerReply()
            raise VitrineError(ErrorCode.NOT_JOINED, "the participant is not in the room")
        if peer.ended and not isinstance(command, LeaveCommand):  # gone, being freed: nothing more to negotiate
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "this participant's peer connection has ended")
        if isinstance(command, AdmitCommand):
            return WorkerReply()  # already in
        if isinstance(command, AnswerCommand):
            ups, next_offer = await peer.apply_answer(command.sdp)
            await self._published(room, peer, ups)
            return WorkerReply(offer=next_offer, published=[u.track for u in ups])
        if isinstance(command, OfferCommand):
            answer, ups = await peer.apply_offer(
                command.sdp, peer.participant.grants.can_publish, _playable(room, peer, command.publisher)
            )
            await self._published(room, peer, ups)
            return WorkerReply(answer=answer, published=[u.track for u in ups])
        if isinstance(command, CandidateCommand):
            await peer.add_candidate(command.candidate)
            return WorkerReply()
        if isinstance(command, PublishCommand):
            if not peer.participant.grants.can_publish:
                raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
            peer.add_publications(command.tracks, self.settings.max_tracks_per_participant)
            return WorkerReply(offer=await peer.make_offer())
        if isinstance(command, UnpublishCommand):
            up = peer.published.pop(command.track_sid, None)
            if up is None:
                raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "no such published track")
            await self._unpublished(room, [up])
            return WorkerReply(unpublished=[up.track])
        if isinstance(command, LeaveCommand):
            return await self._leave(room, peer)
        raise VitrineError(ErrorCode.INVALID_MESSAGE, "unknown command")

    async def _knocker(self, room: WorkerRoom, peer: PeerSession, command: WorkerCommand) -> WorkerReply:
        """A knocker may finish its negotiation, be admitted or leave; nothing else until it is let in."""
        if isinstance(command, AdmitCommand):
            return await self._admit(room, peer)
        if isinstance(command, AnswerCommand):
            _, next_offer = await peer.apply_answer(command.sdp)  # its publications wait in peer.published
            return WorkerReply(offer=next_offer)
        if isinstance(command, CandidateCommand):
            await peer.add_candidate(command.candidate)
            return WorkerReply()
        if isinstance(command, LeaveCommand):
            room.waiting.pop(peer.sid, None)
            await peer.close()
            self._forget_if_empty(room)
            return WorkerReply()
        raise VitrineError(ErrorCode.NOT_JOINED, "waiting to be admitted")

    async def _admit(self, room: WorkerRoom, peer: PeerSession) -> WorkerReply:
        """The knocker is let in: what it publishes (already flowing in) is forwarded from now on, and it gets
        the room's tracks. Its connection is up, so the room sees it after one renegotiation, not a join."""
        room.waiting.pop(peer.sid, None)
        room.peers[peer.sid] = peer
        room.auto_subscribe[peer.sid] = True
        if peer.evidence is not None:
            peer.evidence.accepting = True
        if peer.participant.grants.can_subscribe:
            for up in room.ups.values():
                peer.add_subscription(up)
        ups = list(peer.published.values())
        await self._published(room, peer, ups)
        offer = await peer.make_offer() if peer.subscriptions else None
        return WorkerReply(offer=offer, published=[u.track for u in ups])

    def _forget_if_empty(self, room: WorkerRoom) -> None:
        if not room.peers and not room.waiting and room.relay is None:  # a relay keeps pulling until its room closes
            self.rooms.pop(room.name, None)

    def _room(self, name: str) -> WorkerRoom:
        room = self.rooms.get(name)
        if room is None:
            if len(self.rooms) >= self.settings.max_rooms_per_worker:
                raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "this media worker is full")
            room = self.rooms[name] = WorkerRoom(name)
        return room

    async def _join(self, command: JoinCommand) -> WorkerReply:
        name = command.room.name
        room = self._room(name)
        async with room.lock:
            room.kind, room.shop = command.room.kind, command.room.shop
            participant = command.participant
            old = room.peers.get(participant.sid)
            if old is not None:
                await self._leave(room, old)
            if (knocker := room.waiting.pop(participant.sid, None)) is not None:  # joined afresh instead
                await knocker.close()
            peer = PeerSession(
                participant,
                self.settings.max_sdp_bytes,
                self.settings.rtc_public_ip,
                on_gone=functools.partial(self._peer_gone, name),
            )
            if self._silence_watch is None:
                self._silence_watch = asyncio.create_task(self._watch_silence())
            try:
                if participant.grants.can_subscribe and command.auto_subscribe and command.admitted:
                    for up in room.ups.values():
                        peer.add_subscription(up)
                if command.publish:
                    if not participant.grants.can_publish:
                        raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
                    peer.add_publications(command.publish, self.settings.max_tracks_per_participant)
                evidence = self._evidence_target(command.room, participant)
                if evidence is not None:
                    peer.open_evidence_channel(evidence).accepting = command.admitted
                offer = await peer.make_offer() if peer.pc.getTransceivers() or peer.evidence else None
            except BaseException:
                try:
                    await peer.close()
                finally:
                    self._forget_if_empty(room)
                raise
            if not command.admitted:
                room.waiting[participant.sid] = peer
                return WorkerReply(offer=offer)
            room.peers[participant.sid] = peer
            room.auto_subscribe[participant.sid] = command.auto_subscribe
            if command.room.recording_id and name not in self.recordings:
                self._auto_record(room, command.room.recording_id)
            return WorkerReply(offer=offer)

    async def _relay(self, command: RelayCommand) -> WorkerReply:
        """Pull a live room's tracks from its origin, so this worker can serve a share of its viewers."""
        room = self._room(command.room.name)
        async with room.lock:
            if command.action == "open":
                await self._end_relay(room)
                if not command.tracks:
                    return WorkerReply()
                room.relay = RelayIn(command.tracks)
                return WorkerReply(offer=ServerOfferMessage(sdp=await room.relay.offer()))
            if room.relay is None or command.sdp is None:
                raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "no relay offer is waiting for this answer")
            await self._published(room, None, await room.relay.apply_answer(command.sdp, command.mids))
            return WorkerReply()

    async def _end_relay(self, room: WorkerRoom) -> None:
        relay, room.relay = room.relay, None
        if relay is not None:
            await self._unpublished(room, list(relay.ups.values()))
            await relay.close()

    async def _published(self, room: WorkerRoom, publisher: PeerSession | None, ups: list[UpTrack]) -> None:
        """Subscribe everyone allowed to the new tracks and renegotiate them."""
        if not ups:
            return
        recording = self.recordings.get(room.name)
        for up in ups:
            room.ups[up.track.sid] = up
            if recording is not None:
                _record_track(recording, room, up)
        for peer in list(room.peers.values()):
            if peer is publisher or not peer.participant.grants.can_subscribe:
                continue
            if not room.auto_subscribe.get(peer.sid, True):
                continue
            for up in ups:
                peer.add_subscription(up)
            await self._offer_to(room, peer)

    async def _unpublished(self, room: WorkerRoom, ups: list[UpTrack]) -> None:
        recording = self.recordings.get(room.name)
        for up in ups:
            room.ups.pop(up.track.sid, None)
            if recording is not None:
                recording.detach(up)
            up.close()
        for peer in list(room.peers.values()):
            changed = [peer.remove_subscription(up.track.sid) for up in ups]
            if any(changed):
                await self._offer_to(room, peer)

    async def _offer_to(self, room: WorkerRoom, peer: PeerSession) -> None:
        offer = await peer.make_offer()
        if offer is not None:
            await self.push(OfferPush(room=room.name, sid=peer.sid, node_id=peer.participant.node_id, offer=offer))

    async def _leave(self, room: WorkerRoom, peer: PeerSession) -> WorkerReply:
        room.peers.pop(peer.sid, None)
        room.auto_subscribe.pop(peer.sid, None)
        ups = list(peer.published.values())
        try:
            await peer.close()
            await self._unpublished(room, ups)
        finally:  # whatever failed, an empty room is not kept: it would count against the worker's limit
            self._forget_if_empty(room)
        return WorkerReply(unpublished=[u.track for u in ups])

    async def _close_room(self, room: WorkerRoom) -> WorkerReply:
        ups = list(room.ups.values())
        if room.relay is not None:  # everyone goes: no renegotiation, just close
            await room.relay.close()
            room.relay = None
        for peer in [*room.peers.values(), *room.waiting.values()]:
            await peer.close()
        self.rooms.pop(room.name, None)
        return WorkerReply(unpublished=[u.track for u in ups], recording=await self._end_recording(room.name))

    async def drop_rooms(self, gone: GoneReason | None = None) -> int:
        """Close every room, under each room's lock (their recordings are finished): coordination state was
        lost, so signaling no longer knows these rooms are here and could place them on another worker; or
        the worker drains (``gone``: each participant's signaling node is told, as of a peer that ended, and
        sends it to reconnect). Their clients rejoin and are placed afresh. Returns how many were closed."""
        rooms = list(self.rooms.values())
        for room in rooms:
            async with room.lock:
                participants = [peer.participant for peer in room.peers.values()]
                await self._close_room(room)
            for participant in participants if gone is not None else ():
                try:
                    await self.push(
                        OfferPush(room=room.name, sid=participant.sid, node_id=participant.node_id, gone=gone)
                    )
                except Exception:
                    logger.exception("telling signaling that %s of room %s is gone failed", participant.sid, room.name)
        return len(rooms)

    async def close(self) -> None:
        if self._silence_watch is not None:
            self._silence_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._silence_watch
        await self._freeing.cancel()
        for room in list(self.rooms.values()):
            await self._close_room(room)
        for name in list(self.recordings):
            await self._end_recording(name)

    # -- peers that are gone -----------------------------------------------------

    def _peer_gone(self, name: str, peer: PeerSession, reason: GoneReason) -> None:
        """Called from aiortc's event or the silence watch: free the peer under its room's lock, later."""
        self._freeing.spawn(self._free_gone(name, peer))

    async def _free_gone(self, name: str, peer: PeerSession) -> None:
        """Free a gone peer as its leave would, then tell signaling (outside the lock: signaling may call
        back into the room). A knocker is only freed: it has no participant record, and an admit that
        finds it gone joins it afresh."""
        room = self.rooms.get(name)
        if room is None:
            return
        try:
            async with room.lock:
                if room.peers.get(peer.sid) is peer:
                    await self._leave(room, peer)
                elif room.waiting.get(peer.sid) is peer:
                    room.waiting.pop(peer.sid)
                    await peer.close()
                    self._forget_if_empty(room)
                    return
                else:
                    return  # it left, or joined again, meanwhile
            await self.push(OfferPush(room=name, sid=peer.sid, node_id=peer.participant.node_id, gone=peer.gone))
        except Exception:
            logger.exception("freeing the gone peer %s of room %s failed", peer.sid, name)

    async def _watch_silence(self) -> None:
        """Report peers nothing arrived from for ``peer_silence_s``, checked every quarter of it: a peer
        that vanished without a word is freed at most 1.25 times that after its last datagram."""
        bound = self.settings.peer_silence_s
        while True:
            await asyncio.sleep(bound / 4)
            now = time.monotonic()
            for room in list(self.rooms.values()):
                for peer in [*room.peers.values(), *room.waiting.values()]:
                    if peer.silent_for(now) > bound:
                        peer.report_gone(GoneReason.SILENT)

    # -- recording ---------------------------------------------------------------

    async def _record(self, room: WorkerRoom | None, command: RecordCommand) -> WorkerReply:
        """Start (idempotent for the same id) or stop the room's recording."""
        current = self.recordings.get(command.room)
        if command.action == "stop":
            if current is None or current.recording_id != command.recording_id:
                raise VitrineError(ErrorCode.RECORDING_NOT_FOUND, "the room has no such recording")
            return WorkerReply(recording=await self._end_recording(command.room))
        if current is not None:
            if current.recording_id != command.recording_id:
                raise VitrineError(ErrorCode.RECORDING_EXISTS, "the room is already being recorded")
            return WorkerReply(recording=current.info())
        assert room is not None
        return WorkerReply(recording=self._start_recording(room, command.recording_id, command.identity).info())

    def _start_recording(self, room: WorkerRoom, recording_id: str, identity: str | None = None) -> Recording:
        if any(r.recording_id == recording_id for r in self.recordings.values()):
            raise VitrineError(ErrorCode.RECORDING_EXISTS, "another room is being recorded under this id")
        recording = self.recordings[room.name] = Recording(
            recording_id, room.name, Path(self.settings.recordings_dir), identity=identity
        )
        for up in room.ups.values():
            _record_track(recording, room, up)
        return recording

    def _auto_record(self, room: WorkerRoom, recording_id: str) -> None:
        """A room created to be recorded (``Room.recording_id``) starts recording at its first join here: the
        next part of its recording if the room was on another worker before (a show goes on after a worker
        change). Never fails the join: a disk error is logged.
        """
        try:
            self._start_recording(room, recording_id)
        except VitrineError as exc:
            logger.info("room %s is not recorded: %s", room.name, exc.message)

    async def _end_recording(self, name: str) -> RecordingInfo | None:
        """Finalize the room's recording, if it has one; it never raises."""
        recording = self.recordings.pop(name, None)
        if recording is None:
            return None
        try:
            return await recording.stop()
        except Exception:
            logger.exception("recording %s could not be finalized", recording.recording_id)
            return None

    # -- inspection evidence -------------------------------------------------------

    def _evidence_target(self, room: Room, participant: Participant) -> EvidenceTarget | None:
        """Only an inspection's buyer gets the evidence channel: its camera takes the photos."""
        where = _inspection_case(room)
        if participant.role != Role.BUYER or where is None:
            return None

        async def stored(artifact: Artifact) -> None:  # signaling records it in the case
            await self.push(
                OfferPush(room=room.name, sid=participant.sid, node_id=participant.node_id, artifact=artifact)
            )

        return EvidenceTarget(self.evidence, *where, self.settings.inspect_max_photo_bytes, stored)

    async def _snapshot(self, room: WorkerRoom, identity: str) -> Artifact:
        """Decode the next keyframe of the identity's video into a JPEG of the room's case."""
        where = _inspection_case(room)
        if where is None:
            raise VitrineError(ErrorCode.CASE_NOT_FOUND, "snapshots belong to inspection cases")
        videos = [
            up
            for peer in room.peers.values()
            if peer.participant.identity == identity
            for up in peer.published.values()
            if up.track.kind == TrackKind.VIDEO
        ]
        if not videos:
            raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "this participant publishes no video")
        up = next((u for u in reversed(videos) if u.track.source == TrackSource.CAMERA), videos[-1])
        still = await take_snapshot(up)
        return await asyncio.to_thread(
            self.evidence.write,
            *where,
            ArtifactKind.SNAPSHOT,
            still.jpeg,
            ext="jpg",
            content_type="image/jpeg",
            source="media worker snapshot (decoded keyframe)",
            width=still.width,
            height=still.height,
        )

    # -- introspection ---------------------------------------------------------

    def _drain_requested(self) -> WorkerReply:
        if self.on_drain is None:
            raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "this media worker cannot drain")
        self.on_drain()
        return WorkerReply()

    def node(self) -> WorkerNode:
        return WorkerNode(
            id=self.id,
            state=self.state,
            rooms=len(self.rooms),
            participants=sum(len(r.peers) for r in self.rooms.values()),
            max_rooms=self.settings.max_rooms_per_worker,
            stats=self.media_stats(),
        )

    def media_stats(self) -> dict[str, int]:
        """Counters that prove the forwarding path: packets moved, decoders and encoders never used."""
        peers = [p for r in self.rooms.values() for p in r.peers.values()]
        ups = [u for r in self.rooms.values() for u in r.ups.values()]
        downs = [d for u in ups for d in u.downs.values()]
        return {
            "pid": os.getpid(),
            "rooms": len(self.rooms),
            "participants": len(peers),
            "waiting": sum(len(r.waiting) for r in self.rooms.values()),  # knockers, connected but not let in
            "published_tracks": len(ups),
            "subscriptions": len(downs),
            "packets_in": sum(u.counters.packets_in for u in ups),
            "packets_out": sum(d.counters.packets for d in downs),
            "retransmitted": sum(d.counters.retransmitted for d in downs),
            "keyframe_requests": sum(u.counters.keyframe_requests for u in ups),
            "nacks_upstream": sum(u.counters.nacks_sent_upstream for u in ups),
            "foreign_datagrams_dropped": taps.DatagramGuard.dropped,
            "dtls_flights_resent": taps.HandshakeAccelerator.dtls_flights_resent,
            "recordings": len(self.recordings),
            "recording_dropped_packets": sum(r.dropped_packets for r in self.recordings.values()),
            "decoders_running": sum(taps.decoder_running(r) for p in peers for r in p.receivers()),
            "encoders_created": sum(taps.encoder_created(s) for p in peers for s in p.senders()),
        }
