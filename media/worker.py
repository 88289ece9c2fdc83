"""The media worker: routes signaling's commands to its rooms, and keeps what spans them.

Signaling drives it with ``WorkerCommand``s (directly when embedded, over Redis when scaled).
``MediaWorker.handle`` matches each command and hands a participant's to its room
(``media/room.py``: joins, publications, subscriptions, leaves, knockers), which runs them one at a
time under its lock, so negotiation steps never interleave (a snapshot, which waits for a keyframe,
runs beside them). Offers the worker starts itself (a new track to subscribe to) and the stored files
of a participant with an evidence folder (``media/evidence_channel.py``) leave through ``push``.

The worker knows no products: who gets the evidence channel, and which folder its photos and the
room's snapshots go in, comes with the join (``JoinCommand.evidence``), decided by signaling.

A peer connection that ends without a leave (closed by its client, failed, ICE
consent expired, or silent for ``peer_silence_s``: ``PeerSession.report_gone``)
is freed here as a leave would free it, and signaling is told (``PeerGone``)
so the participant's leave is announced, whatever its socket does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from media import taps
from media.admission import HandshakeGate
from media.evidence_channel import EvidenceTarget
from media.peer import PeerSession
from media.recorder import Recording
from media.room import WorkerRoom
from media.snapshot import take_snapshot
from vitrine.core.artifacts import ArtifactStore
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant
from vitrine.core.state.nodes import WorkerNode, WorkerState
from vitrine.core.tasks import TaskSet, stop_tasks
from vitrine.core.wire.inspect import Artifact, ArtifactKind
from vitrine.core.wire.rpc import (
    AdmitCommand,
    AnswerCommand,
    ArtifactStored,
    CandidateCommand,
    CloseRoomCommand,
    Done,
    DrainCommand,
    EvidenceFolder,
    GoneReason,
    JoinCommand,
    JoinQueued,
    LeaveCommand,
    Negotiated,
    OfferCommand,
    PeerGone,
    PublishCommand,
    PushHandler,
    RecordCommand,
    Recorded,
    RecordingInfo,
    Refused,
    RelayCommand,
    Snapped,
    SnapshotCommand,
    UnpublishCommand,
    WorkerCommand,
    WorkerReply,
)

logger = logging.getLogger(__name__)


class MediaWorker:
    """Routes signaling's commands to the rooms here, and keeps what is worker-wide.

    A room's behaviour (joins, publications, subscriptions, leaves, knockers) is ``WorkerRoom``'s
    (media/room.py). What stays here spans rooms or outlives them: the rooms by name and the limit on
    them, the recordings (one may outlive its room emptying here), the evidence store and snapshots,
    gone peers and the silence watch, the drain, and the counters.
    """

    def __init__(self, settings: Settings, worker_id: str, push: PushHandler) -> None:
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
        # Joins connected at once; the rest wait in line (media/admission.py)
        self.handshakes = HandshakeGate(
            settings.max_handshakes_per_worker,
            max_waiting=settings.join_queue_max,
            timeout_s=settings.handshake_timeout_s,
        )
        taps.configure_host_candidates(settings.rtc_interfaces, settings.rtc_port_min, settings.rtc_port_max)
        taps.DatagramGuard.install()
        taps.HandshakeAccelerator.install()
        taps.LeanAiortc.install()

    async def handle(self, command: WorkerCommand) -> WorkerReply:
        """Run one command; every failure comes back as a typed reply, never an exception."""
        try:
            return await self._route(command)
        except VitrineError as exc:
            return Refused(error=exc.code, message=exc.message)
        except taps.PortRangeExhausted:
            logger.warning("media port range exhausted")
            return Refused(error=ErrorCode.NO_MEDIA_WORKER, message="the media worker has no free UDP port")
        except Exception:
            logger.exception("media worker failed on %s", type(command).__name__)
            return Refused(error=ErrorCode.INTERNAL, message="media worker error")

    async def _route(self, command: WorkerCommand) -> WorkerReply:
        """Commands for one room run one at a time, under the room's lock; a snapshot, which waits for a
        keyframe, runs beside them. A room that is not here is ``room_not_found``, except for what may
        outlive it: a close or a stop finishes its recording, and a leave has nothing left to do."""
        match command:
            case DrainCommand():
                return self._drain_requested()
            case JoinCommand():
                return await self._join(command)
            case OfferCommand() if self._first_offer(command):
                return await self._offer_in_turn(command)
            case RelayCommand():
                return await self._relay(command)
            case SnapshotCommand(room=name, identity=identity):  # not under the room's lock
                return Snapped(artifact=await self._snapshot(self._here(name), identity))
            case CloseRoomCommand(room=name) if name not in self.rooms:
                return Recorded(recording=await self._end_recording(name))
            case CloseRoomCommand(room=name):
                room = self._here(name)
                async with room.lock:
                    return await self._close_room(room)
            case RecordCommand(room=name, action="stop") if name not in self.rooms:
                return await self._record(None, command)
            case RecordCommand(room=name):
                room = self._here(name)
                async with room.lock:
                    return await self._record(room, command)
            case LeaveCommand(room=name) if name not in self.rooms:
                return Negotiated()
            case (
                OfferCommand()
                | AnswerCommand()
                | CandidateCommand()
                | PublishCommand()
                | UnpublishCommand()
                | LeaveCommand()
                | AdmitCommand()
            ):
                room = self._here(command.room)
                async with room.lock:
                    return await room.handle(command)
            case _:
                assert_never(command)

    def _here(self, name: str) -> WorkerRoom:
        room = self.rooms.get(name)
        if room is None:
            raise VitrineError(ErrorCode.ROOM_NOT_FOUND, "the room is not on this worker")
        return room

    def _room(self, name: str) -> WorkerRoom:
        """The room, made here if it is new and the worker has room for it."""
        room = self.rooms.get(name)
        if room is None:
            if len(self.rooms) >= self.settings.max_rooms_per_worker:
                raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "this media worker is full")
            room = self.rooms[name] = WorkerRoom(
                name,
                push=self.push,
                recording=functools.partial(self.recordings.get, name),
                max_tracks=self.settings.max_tracks_per_participant,
                on_empty=self._forget,
            )
        return room

    def _forget(self, room: WorkerRoom) -> None:
        self.rooms.pop(room.name, None)

    async def _join(self, command: JoinCommand) -> Negotiated:
        """Set the peer up; a join whose offer starts a handshake (``/v1/rtc``, a knocker) first waits for a
        handshake slot, in line, outside the room's lock (the handshakes in flight need it for their answers).
        The peer gives the slot back when its handshake is over, or at once when there is nothing to negotiate
        yet. A WHIP/WHEP session or a relay (``auto_subscribe`` false) waits at its first offer instead
        (``_offer_in_turn``): its admission's other steps are not held up in line."""
        name = command.room.name
        participant = command.participant
        queued = functools.partial(self._tell_queued, name, participant)
        slot = await self.handshakes.enter(queued) if command.auto_subscribe else None
        release = slot.release if slot is not None else None
        try:
            room = self._room(name)
            async with room.lock:
                offer = await room.join(
                    command,
                    functools.partial(self._new_peer, name, participant, release),
                    self._evidence_target(name, participant, command.evidence),
                )
                if command.admitted and command.room.recording_id and name not in self.recordings:
                    self._auto_record(room, command.room.recording_id)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        if offer is None and slot is not None:
            slot.release()
        return Negotiated(offer=offer)

    def _first_offer(self, command: OfferCommand) -> bool:
        """A client offer that starts its peer's first handshake (WHIP, WHEP, a relay's pull)."""
        room = self.rooms.get(command.room)
        peer = room.peers.get(command.sid) if room is not None else None
        return peer is not None and not peer.negotiated

    async def _offer_in_turn(self, command: OfferCommand) -> Negotiated:
        """Answer a client's first offer once a handshake slot is free (waiting in line, outside the lock)."""
        room = self._here(command.room)
        peer = room.peers[command.sid]
        slot = await self.handshakes.enter(functools.partial(self._tell_queued, room.name, peer.participant))
        try:
            async with room.lock:
                peer.hold_handshake(slot.release)
                return await room.handle(command)
        except BaseException:
            slot.release()
            raise

    async def _tell_queued(self, room: str, participant: Participant, position: int) -> None:
        await self.push(
            JoinQueued(
                room=room,
                sid=participant.sid,
                node_id=participant.node_id,
                position=position,
                again_s=self.handshakes.notice_s,
            )
        )

    def _new_peer(self, room: str, participant: Participant, handshake_over: Callable[[], None] | None) -> PeerSession:
        peer = PeerSession(
            participant,
            self.settings.max_sdp_bytes,
            self.settings.rtc_public_ip,
            on_gone=functools.partial(self._peer_gone, room),
            on_handshake_over=handshake_over,
        )
        if self._silence_watch is None:
            self._silence_watch = asyncio.create_task(self._watch_silence())
        return peer

    async def _relay(self, command: RelayCommand) -> Negotiated:
        """Pull a live room's tracks from its origin, so this worker can serve a share of its viewers."""
        room = self._room(command.room.name)
        async with room.lock:
            if command.action == "open":
                return Negotiated(offer=await room.open_relay(command.tracks))
            await room.answer_relay(command.sdp, command.mids)
            return Negotiated()

    async def _close_room(self, room: WorkerRoom) -> Recorded:
        await room.close()
        self.rooms.pop(room.name, None)
        return Recorded(recording=await self._end_recording(room.name))

    async def drop_rooms(self, gone: GoneReason | None = None) -> int:
        """Close every room, under each room's lock (their recordings are finished): coordination state was
        lost, so signaling no longer knows these rooms are here and could place them on another worker; or
        the worker drains (``gone``: each participant's signaling node is told, as of a peer that ended, and
        sends it to reconnect). Their clients rejoin and are placed afresh. Returns how many were closed."""
        rooms = list(self.rooms.values())
        for room in rooms:
            async with room.lock:
                participants = room.participants()
                await self._close_room(room)
            if gone is None:
                continue
            for participant in participants:
                try:
                    await self.push(
                        PeerGone(room=room.name, sid=participant.sid, node_id=participant.node_id, reason=gone)
                    )
                except Exception:
                    logger.exception("telling signaling that %s of room %s is gone failed", participant.sid, room.name)
        return len(rooms)

    async def close(self) -> None:
        await stop_tasks(self._silence_watch)
        await self._freeing.cancel()
        for room in list(self.rooms.values()):
            await self._close_room(room)
        for name in list(self.recordings):
            await self._end_recording(name)

    # -- peers that are gone -----------------------------------------------------

    def _peer_gone(self, name: str, peer: PeerSession, reason: GoneReason) -> None:
        """Called from aiortc's event or the silence watch: free the peer under its room's lock, later."""
        self._freeing.spawn(self._free_gone(name, peer, reason))

    async def _free_gone(self, name: str, peer: PeerSession, reason: GoneReason) -> None:
        """Free a gone peer as its leave would, then tell signaling (outside the lock: signaling may call
        back into the room). A knocker is only freed: it has no participant record, and an admit that
        finds it gone joins it afresh."""
        room = self.rooms.get(name)
        if room is None:
            return
        try:
            async with room.lock:
                if not await room.free_gone(peer):
                    return  # a knocker, only freed; or it left, or joined again, meanwhile
            await self.push(PeerGone(room=name, sid=peer.sid, node_id=peer.participant.node_id, reason=reason))
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
                room.report_silent(now, bound)

    # -- recording ---------------------------------------------------------------

    async def _record(self, room: WorkerRoom | None, command: RecordCommand) -> Recorded:
        """Start (idempotent for the same id) or stop the room's recording."""
        current = self.recordings.get(command.room)
        if command.action == "stop":
            if current is None or current.recording_id != command.recording_id:
                raise VitrineError(ErrorCode.RECORDING_NOT_FOUND, "the room has no such recording")
            return Recorded(recording=await self._end_recording(command.room))
        if current is not None:
            if current.recording_id != command.recording_id:
                raise VitrineError(ErrorCode.RECORDING_EXISTS, "the room is already being recorded")
            return Recorded(recording=current.info())
        assert room is not None
        return Recorded(recording=self._start_recording(room, command.recording_id, command.identity).info())

    def _start_recording(self, room: WorkerRoom, recording_id: str, identity: str | None = None) -> Recording:
        if any(r.recording_id == recording_id for r in self.recordings.values()):
            raise VitrineError(ErrorCode.RECORDING_EXISTS, "another room is being recorded under this id")
        recording = self.recordings[room.name] = Recording(
            recording_id, room.name, Path(self.settings.recordings_dir), identity=identity
        )
        for up in room.ups.values():
            room.record(recording, up)
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

    # -- evidence ---------------------------------------------------------------------

    def _evidence_target(
        self, room: str, participant: Participant, folder: EvidenceFolder | None
    ) -> EvidenceTarget | None:
        """Only a participant that signaling gave a folder gets the evidence channel (an inspection's buyer:
        its camera takes the photos); what it sends is stored there and pushed to its node for the record."""
        if folder is None:
            return None

        async def stored(artifact: Artifact) -> None:  # signaling records it in the case
            await self.push(
                ArtifactStored(room=room, sid=participant.sid, node_id=participant.node_id, artifact=artifact)
            )

        return EvidenceTarget(self.evidence, folder.shop, folder.case_id, self.settings.inspect_max_photo_bytes, stored)

    async def _snapshot(self, room: WorkerRoom, identity: str) -> Artifact:
        """Decode the next keyframe of the identity's video into a JPEG in the room's evidence folder.

        The publisher is looked for first: in an inspection whose buyer has not joined this worker yet, the
        inspector hears ``track_not_found`` (no video yet), as before the folder came with the join; a room
        no evidence participant joined (no case) refuses with ``case_not_found``."""
        up = room.video_of(identity)
        folder = room.evidence
        if folder is None:
            raise VitrineError(ErrorCode.CASE_NOT_FOUND, "snapshots belong to inspection cases")
        still = await take_snapshot(up)
        return await asyncio.to_thread(
            self.evidence.write,
            folder.shop,
            folder.case_id,
            ArtifactKind.SNAPSHOT,
            still.jpeg,
            ext="jpg",
            content_type="image/jpeg",
            source="media worker snapshot (decoded keyframe)",
            width=still.width,
            height=still.height,
        )

    # -- introspection ---------------------------------------------------------

    def _drain_requested(self) -> Done:
        if self.on_drain is None:
            raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "this media worker cannot drain")
        self.on_drain()
        return Done()

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
            "handshakes_in_flight": self.handshakes.in_flight,
            "joins_in_line": self.handshakes.waiting,
            "joins_queued": self.handshakes.queued,  # had to wait their turn, ever
            "joins_busy": self.handshakes.refused,  # refused with worker_busy, ever
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
