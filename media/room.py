"""One room on a media worker: its participants' peer sessions, its published tracks, and who gets what.

The room owns what a participant's command does to the others: a publication is forwarded to everyone
allowed to subscribe (each renegotiated), an unpublish or a leave takes the track away from them again,
and a knocker (``JoinCommand.admitted`` false) stays apart until it is admitted. ``MediaWorker`` only
routes commands here and keeps what is worker-wide (the rooms by name, the recordings, the evidence
store, the drain), so the path of a command through a room reads in this one file.

Everything that changes the room runs under ``lock``: negotiation steps of one room never interleave.
The worker takes it; nothing here does. When the room empties (a leave, a knocker leaving, a failed
join) it says so through ``on_empty``, and the worker forgets it: an empty room kept would count
against ``max_rooms_per_worker``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import assert_never

from media.evidence_channel import EvidenceTarget
from media.forwarder import UpTrack
from media.peer import PeerSession
from media.recorder import Recording
from media.relay import RelayIn
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Track, TrackKind, TrackSource
from vitrine.core.wire.rpc import (
    AdmitCommand,
    AnswerCommand,
    CandidateCommand,
    EvidenceFolder,
    GoneReason,
    JoinCommand,
    LeaveCommand,
    Negotiated,
    OfferCommand,
    PeerOffer,
    PublishCommand,
    PushHandler,
    UnpublishCommand,
)
from vitrine.core.wire.rtc import MidInfo, ServerOfferMessage

logger = logging.getLogger(__name__)

# The commands of one participant of the room; the others are the worker's (media/worker.py).
ParticipantCommand = (
    OfferCommand | AnswerCommand | CandidateCommand | PublishCommand | UnpublishCommand | LeaveCommand | AdmitCommand
)


class WorkerRoom:
    """A room's participants and tracks on this worker, and what each participant's command does to them."""

    def __init__(
        self,
        name: str,
        *,
        push: PushHandler,
        recording: Callable[[], Recording | None],
        max_tracks: int,
        on_empty: Callable[[WorkerRoom], None],
    ) -> None:
        self.name = name
        self.peers: dict[str, PeerSession] = {}
        self.ups: dict[str, UpTrack] = {}
        # False for a WHIP/WHEP session: it cannot renegotiate, so nothing is added to it after its offer.
        self.auto_subscribe: dict[str, bool] = {}
        self.lock = asyncio.Lock()
        self.relay: RelayIn | None = None  # on a relay worker: the pull of the live room's tracks from its origin
        # Knockers (JoinCommand.admitted false): connected and receiving their publications, which stay in the
        # peer and reach nobody (not forwarded, not recorded), subscribed to nothing, until AdmitCommand.
        self.waiting: dict[str, PeerSession] = {}
        # The folder the room's evidence participant joined with (JoinCommand.evidence), kept while the room is
        # here: snapshots go there. Signaling decides who has one; the worker knows no products.
        self.evidence: EvidenceFolder | None = None
        self._push = push
        # By room name on the worker, not here: a recording outlives the room emptying on this worker (OBS
        # reconnecting over WHIP), so the room asks for the current one whenever tracks come and go.
        self._recording = recording
        self._max_tracks = max_tracks
        self._on_empty = on_empty

    @property
    def empty(self) -> bool:
        """Nobody in it, nobody knocking, and no relay: a relay keeps pulling until its room closes."""
        return not self.peers and not self.waiting and self.relay is None

    def _emptied(self) -> None:
        if self.empty:
            self._on_empty(self)

    # -- joining and leaving -----------------------------------------------------

    async def join(
        self, command: JoinCommand, new_peer: Callable[[], PeerSession], evidence: EvidenceTarget | None
    ) -> ServerOfferMessage | None:
        """Set up the participant's peer and return its first offer (None: nothing to negotiate yet).

        A session of the same sid already here (a reconnect) leaves first, and a knocker of that sid is
        dropped: it joined afresh instead. A failed join closes its peer and frees an emptied room."""
        participant = command.participant
        if command.evidence is not None:
            self.evidence = command.evidence
        old = self.peers.get(participant.sid)
        if old is not None:
            await self.leave(old)
        if (knocker := self.waiting.pop(participant.sid, None)) is not None:
            await knocker.close()
        peer = new_peer()
        try:
            if participant.grants.can_subscribe and command.auto_subscribe and command.admitted:
                for up in self.ups.values():
                    peer.add_subscription(up)
            if command.publish:
                if not participant.grants.can_publish:
                    raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
                peer.add_publications(command.publish, self._max_tracks)
            if evidence is not None:
                peer.open_evidence_channel(evidence).accepting = command.admitted
            offer = await peer.make_offer() if peer.pc.getTransceivers() or peer.evidence else None
        except BaseException:
            try:
                await peer.close()
            finally:
                self._emptied()
            raise
        if not command.admitted:
            self.waiting[participant.sid] = peer
        else:
            self.peers[participant.sid] = peer
            self.auto_subscribe[participant.sid] = command.auto_subscribe
        return offer

    async def admit(self, peer: PeerSession) -> Negotiated:
        """The knocker is let in: what it publishes (already flowing in) is forwarded from now on, and it gets
        the room's tracks. Its connection is up, so the room sees it after one renegotiation, not a join."""
        self.waiting.pop(peer.sid, None)
        self.peers[peer.sid] = peer
        self.auto_subscribe[peer.sid] = True
        if peer.evidence is not None:
            peer.evidence.accepting = True
        if peer.participant.grants.can_subscribe:
            for up in self.ups.values():
                peer.add_subscription(up)
        ups = list(peer.published.values())
        await self.published(peer, ups)
        offer = await peer.make_offer() if peer.subscriptions else None
        return Negotiated(offer=offer, published=[u.track for u in ups])

    async def leave(self, peer: PeerSession) -> Negotiated:
        """The participant goes: its tracks are taken from everyone who had them, and an emptied room goes."""
        self.peers.pop(peer.sid, None)
        self.auto_subscribe.pop(peer.sid, None)
        ups = list(peer.published.values())
        try:
            await peer.close()
            await self.unpublished(ups)
        finally:  # whatever failed, an empty room is not kept: it would count against the worker's limit
            self._emptied()
        return Negotiated(unpublished=[u.track for u in ups])

    async def _knocker_leaves(self, peer: PeerSession) -> None:
        self.waiting.pop(peer.sid, None)
        await peer.close()
        self._emptied()

    async def free_gone(self, peer: PeerSession) -> bool:
        """Free a peer whose connection ended, as its leave would. True when it left the room (signaling is
        to be told); a knocker is only freed (it has no participant record, and an admit that finds it gone
        joins it afresh), and a peer that left, or joined again, meanwhile is not this room's to free."""
        if self.peers.get(peer.sid) is peer:
            await self.leave(peer)
            return True
        if self.waiting.get(peer.sid) is peer:
            await self._knocker_leaves(peer)
        return False

    async def close(self) -> None:
        """Everyone goes at once, with no renegotiation."""
        if self.relay is not None:
            await self.relay.close()
            self.relay = None
        for peer in [*self.peers.values(), *self.waiting.values()]:
            await peer.close()

    def participants(self) -> list[Participant]:
        return [peer.participant for peer in self.peers.values()]

    def report_silent(self, now: float, bound: float) -> None:
        """Report every peer, knockers included, that nothing arrived from for more than ``bound`` seconds."""
        for peer in [*self.peers.values(), *self.waiting.values()]:
            if peer.silent_for(now) > bound:
                peer.report_gone(GoneReason.SILENT)

    # -- one participant's commands ----------------------------------------------

    async def handle(self, command: ParticipantCommand) -> Negotiated:
        """Run one participant's command (under ``lock``, taken by the worker)."""
        peer = self.peers.get(command.sid)
        if peer is None and command.sid in self.waiting:
            return await self._knocker(self.waiting[command.sid], command)
        if peer is None:
            if isinstance(command, LeaveCommand):
                return Negotiated()
            raise VitrineError(ErrorCode.NOT_JOINED, "the participant is not in the room")
        if peer.ended and not isinstance(command, LeaveCommand):  # gone, being freed: nothing more to negotiate
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "this participant's peer connection has ended")
        match command:
            case AdmitCommand():
                return Negotiated()  # already in
            case AnswerCommand(sdp=sdp):
                ups, next_offer = await peer.apply_answer(sdp)
                await self.published(peer, ups)
                return Negotiated(offer=next_offer, published=[u.track for u in ups])
            case OfferCommand(sdp=sdp, publisher=publisher):
                answer, ups = await peer.apply_offer(
                    sdp, peer.participant.grants.can_publish, self.playable(peer, publisher)
                )
                await self.published(peer, ups)
                return Negotiated(answer=answer, published=[u.track for u in ups])
            case CandidateCommand(candidate=candidate):
                await peer.add_candidate(candidate)
                return Negotiated()
            case PublishCommand(tracks=tracks):
                if not peer.participant.grants.can_publish:
                    raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
                peer.add_publications(tracks, self._max_tracks)
                return Negotiated(offer=await peer.make_offer())
            case UnpublishCommand(track_sid=track_sid):
                up = peer.published.pop(track_sid, None)
                if up is None:
                    raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "no such published track")
                await self.unpublished([up])
                return Negotiated(unpublished=[up.track])
            case LeaveCommand():
                return await self.leave(peer)
            case _:
                assert_never(command)

    async def _knocker(self, peer: PeerSession, command: ParticipantCommand) -> Negotiated:
        """A knocker may finish its negotiation, be admitted or leave; nothing else until it is let in."""
        match command:
            case AdmitCommand():
                return await self.admit(peer)
            case AnswerCommand(sdp=sdp):
                _, next_offer = await peer.apply_answer(sdp)  # its publications wait in peer.published
                return Negotiated(offer=next_offer)
            case CandidateCommand(candidate=candidate):
                await peer.add_candidate(candidate)
                return Negotiated()
            case LeaveCommand():
                await self._knocker_leaves(peer)
                return Negotiated()
            case _:
                raise VitrineError(ErrorCode.NOT_JOINED, "waiting to be admitted")

    def playable(self, peer: PeerSession, publisher: str | None) -> Callable[[str], list[UpTrack]]:
        """What a client offer's receive-only m-lines may be bound to, by kind.

        Published tracks of the room that are not the peer's own; only those of the
        ``publisher`` identity when one is named (WHEP ``?participant=``: in a
        consult, a client's WHEP session must not bind its own WHIP video). Never
        those of a peer that is gone and waits to be freed: a player bound to them
        would show nothing.
        """
        if not peer.participant.grants.can_subscribe:
            return lambda kind: []
        ended = {sid for sid, p in self.peers.items() if p.ended}
        if publisher is None:  # anyone's, relayed tracks included (their publisher is on the origin worker)
            return lambda kind: [
                u
                for u in self.ups.values()
                if u.track.kind.value == kind and u.track.participant_sid not in (peer.sid, *ended)
            ]
        sources = {
            sid
            for sid, p in self.peers.items()
            if sid != peer.sid and sid not in ended and p.participant.identity == publisher
        }
        return lambda kind: [
            u for u in self.ups.values() if u.track.kind.value == kind and u.track.participant_sid in sources
        ]

    def video_of(self, identity: str) -> UpTrack:
        """The identity's camera video (its latest), or its latest video of another source: what a snapshot
        decodes."""
        videos = [
            up
            for peer in self.peers.values()
            if peer.participant.identity == identity
            for up in peer.published.values()
            if up.track.kind == TrackKind.VIDEO
        ]
        if not videos:
            raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "this participant publishes no video")
        return next((u for u in reversed(videos) if u.track.source == TrackSource.CAMERA), videos[-1])

    # -- tracks coming and going: who subscribes to what ---------------------------

    async def published(self, publisher: PeerSession | None, ups: list[UpTrack]) -> None:
        """Subscribe everyone allowed to the new tracks and renegotiate them (the recording gets them too)."""
        if not ups:
            return
        recording = self._recording()
        for up in ups:
            self.ups[up.track.sid] = up
            if recording is not None:
                self.record(recording, up)
        for peer in list(self.peers.values()):
            if peer is publisher or not peer.participant.grants.can_subscribe:
                continue
            if not self.auto_subscribe.get(peer.sid, True):
                continue
            for up in ups:
                peer.add_subscription(up)
            await self._offer_to(peer)

    async def unpublished(self, ups: list[UpTrack]) -> None:
        """Take the tracks from the room, the recording and every subscriber, renegotiating those that had
        them."""
        recording = self._recording()
        for up in ups:
            self.ups.pop(up.track.sid, None)
            if recording is not None:
                recording.detach(up)
            up.close()
        for peer in list(self.peers.values()):
            changed = [peer.remove_subscription(up.track.sid) for up in ups]
            if not any(changed):
                continue
            if not self.auto_subscribe.get(peer.sid, True) and not peer.published:
                # A WHEP player (or a relay's pull) cannot renegotiate: its m-line would stay silent for good,
                # and no track published later reaches it. It ends, as a peer whose connection ended does, so
                # the player sees its connection go and POSTs again (``404 track_not_found`` until someone
                # publishes); a relay pulls again anyway (signaling/cascade.py).
                peer.report_gone(GoneReason.PUBLISHER_LEFT)
                continue
            await self._offer_to(peer)

    async def _offer_to(self, peer: PeerSession) -> None:
        offer = await peer.make_offer()
        if offer is not None:
            await self._push(PeerOffer(room=self.name, sid=peer.sid, node_id=peer.participant.node_id, offer=offer))

    def record(self, recording: Recording, up: UpTrack) -> None:
        """Attach a published track, unless the recording keeps to another identity (an inspection's buyer)."""
        if recording.identity is not None:
            peer = self.peers.get(up.track.participant_sid)
            if peer is None or peer.participant.identity != recording.identity:
                return
        recording.attach(up)

    # -- a relay worker's pull from the origin ---------------------------------------

    async def open_relay(self, tracks: list[Track]) -> ServerOfferMessage | None:
        """Pull ``tracks`` from the origin, dropping any earlier pull; returns the offer (None: no tracks)."""
        await self.end_relay()
        if not tracks:
            return None
        self.relay = RelayIn(tracks)
        return ServerOfferMessage(sdp=await self.relay.offer())

    async def answer_relay(self, sdp: str | None, mids: dict[str, MidInfo]) -> None:
        """The origin's answer: its tracks are published here, as any publisher's."""
        if self.relay is None or sdp is None:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "no relay offer is waiting for this answer")
        await self.published(None, await self.relay.apply_answer(sdp, mids))

    async def end_relay(self) -> None:
        relay, self.relay = self.relay, None
        if relay is not None:
            await self.unpublished(list(relay.ups.values()))
            await relay.close()
