"""One participant's RTCPeerConnection on the worker, and its negotiation state.

The worker offers whenever its side changes (a publication to receive, a
subscription to send) and never has two offers in flight: a change during an
outstanding offer is folded into the next one. A client may offer too
(browsers, WHIP, WHEP); if that collides with the worker's offer the client
gets ``negotiation_glare`` and answers the worker's offer first.

A participant whose join carries an evidence folder (an inspection's buyer)
also gets the ``evidence`` data channel (``media/evidence_channel.py``), opened
with its first offer, so that offer already carries the m=application section.

A peer connection can end without its participant saying so: the client closes
it (aiortc then closes ours), ICE or DTLS fails, ICE consent expires, or the
client vanishes and nothing more arrives from it. The session reports that once
(``on_gone``) so the worker frees it; until then it takes no new subscription or
offer, so the rest of the room keeps working.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import cast

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCapabilities,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from media import taps
from media.evidence_channel import EVIDENCE_LABEL, EvidenceChannel, EvidenceTarget
from media.forwarder import DownTrack, SilentTrack, UpTrack
from media.taps.datagrams import last_heard
from media.taps.rtp import stop_transports
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Track, TrackKind, TrackSource
from vitrine.core.sdp_guard import parse_candidate, parse_sdp, sends_media, with_public_ip
from vitrine.core.wire.rpc import GoneReason
from vitrine.core.wire.rtc import IceCandidate, MidInfo, ServerAnswerMessage, ServerOfferMessage, TrackRequest

logger = logging.getLogger(__name__)

PushOffer = Callable[[Participant, ServerOfferMessage], Awaitable[None]]
OnGone = Callable[["PeerSession", GoneReason], None]
ENDED_STATES = {"closed": GoneReason.CLOSED, "failed": GoneReason.FAILED}  # RTCPeerConnection.connectionState
HANDSHAKE_OVER = {"connected", "closed", "failed"}  # ICE and DTLS done, one way or the other

# Codecs the worker accepts from publishers, in order of preference.
PUBLISH_CODECS = {
    "video": ("video/vp8", "video/h264", "video/rtx"),
    "audio": ("audio/opus",),
}


def new_track_sid() -> str:
    return "TR_" + secrets.token_urlsafe(9)


class PeerSession:
    def __init__(
        self,
        participant: Participant,
        max_sdp_bytes: int,
        public_ip: str | None,
        on_gone: OnGone | None = None,
        on_handshake_over: Callable[[], None] | None = None,
    ) -> None:
        self.participant = participant
        self._on_handshake_over = on_handshake_over  # gives the worker's handshake slot back (media/admission.py)
        self.max_sdp_bytes = max_sdp_bytes
        self.public_ip = public_ip
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._on_gone = on_gone
        self.gone: GoneReason | None = None
        self._negotiated_at: float | None = None  # since when the peer's transport has had the peer's address
        self.pc.on("connectionstatechange", self._connection_changed)
        self.evidence: EvidenceChannel | None = None
        self.published: dict[str, UpTrack] = {}
        self.subscriptions: dict[str, DownTrack] = {}
        self._pending_publications: dict[RTCRtpTransceiver, TrackRequest] = {}
        self._mids: dict[RTCRtpTransceiver, MidInfo] = {}
        self._offer_outstanding = False
        self._renegotiate = False
        self._early_candidates: list[IceCandidate | None] = []
        self.closed = False

    @property
    def sid(self) -> str:
        return self.participant.sid

    # -- what changes the worker's side --------------------------------------

    def add_publications(self, requests: list[TrackRequest], limit: int) -> None:
        if len(self.published) + len(self._pending_publications) + len(requests) > limit:
            raise VitrineError(ErrorCode.TOO_MANY_TRACKS, f"at most {limit} published tracks")
        for request in requests:
            transceiver = self.pc.addTransceiver(request.kind.value, direction="recvonly")
            transceiver.setCodecPreferences(publish_preferences(request.kind.value))
            self._pending_publications[transceiver] = request
            self._mids[transceiver] = MidInfo(kind=request.kind, direction="send")

    def add_subscription(self, up: UpTrack) -> None:
        if up.track.sid in self.subscriptions or self.ended:
            return
        track = SilentTrack(up.track.kind.value, up.track.sid)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(_forward_preferences(up))
        self._subscribe(up, transceiver)

    def _subscribe(self, up: UpTrack, transceiver: RTCRtpTransceiver) -> None:
        self.subscriptions[up.track.sid] = DownTrack(up, self.sid, transceiver)
        self._mids[transceiver] = MidInfo(
            kind=up.track.kind, direction="recv", track_sid=up.track.sid, participant_sid=up.track.participant_sid
        )

    def remove_subscription(self, track_sid: str) -> bool:
        down = self.subscriptions.pop(track_sid, None)
        if down is None:
            return False
        down.detach()
        down.transceiver.direction = "inactive"
        self._mids.pop(down.transceiver, None)
        return True

    def open_evidence_channel(self, target: EvidenceTarget) -> EvidenceChannel:
        """The reliable, ordered ``evidence`` channel, for the next offer.

        Open it after the join's m-lines are added. aiortc's max-bundle puts a data channel made before
        any transceiver on a transport of its own, offers it after the media m-lines, and then, when the
        answer bundles it under the first of them, stops that transport, which the media share.
        """
        self.evidence = EvidenceChannel(self.pc.createDataChannel(EVIDENCE_LABEL, ordered=True), target, self.sid)
        return self.evidence

    # -- negotiation ---------------------------------------------------------

    async def make_offer(self) -> ServerOfferMessage | None:
        """Offer the current local state, or note that another offer is owed."""
        if self.ended:
            return None
        if self._offer_outstanding or self.pc.signalingState != "stable":
            self._renegotiate = True
            return None
        self._renegotiate = False
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._offer_outstanding = True
        return ServerOfferMessage(sdp=self._local_sdp(), mids=self._mid_table())

    async def apply_answer(self, sdp: str) -> tuple[list[UpTrack], ServerOfferMessage | None]:
        """Apply the client's answer; return new publications and the next offer if one is owed."""
        if not self._offer_outstanding:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "no offer is waiting for an answer")
        description = parse_sdp(sdp, self.max_sdp_bytes)
        try:
            with taps.parsed_once(sdp, description):
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, f"answer rejected ({type(exc).__name__})") from None
        self._offer_outstanding = False
        self._negotiated()
        await self._flush_early_candidates()
        published = self._collect_publications()
        next_offer = await self.make_offer() if self._renegotiate else None
        return published, next_offer

    async def apply_offer(
        self, sdp: str, can_publish: bool, available: Callable[[str], list[UpTrack]]
    ) -> tuple[ServerAnswerMessage, list[UpTrack]]:
        """Answer a client offer (WebSocket, WHIP, WHEP).

        Sending m-lines become publications; receive-only m-lines are bound to
        published tracks of their kind from ``available``.
        """
        if self._offer_outstanding:
            raise VitrineError(ErrorCode.NEGOTIATION_GLARE, "answer the server's offer first")
        description = parse_sdp(sdp, self.max_sdp_bytes)
        if sends_media(description) and not can_publish:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
        known = set(self.pc.getTransceivers())
        try:
            with taps.parsed_once(sdp, description):
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, f"offer rejected ({type(exc).__name__})") from None
        for transceiver in self.pc.getTransceivers():
            if transceiver in known:
                continue
            offered = taps.offered_direction(transceiver)
            if offered in ("recvonly", "sendrecv"):
                kind = TrackKind(transceiver.kind)
                self._pending_publications[transceiver] = TrackRequest(kind=kind, source=_source_for(kind))
                self._mids[transceiver] = MidInfo(kind=kind, direction="send")
            elif offered == "sendonly":
                self._bind_playback(transceiver, available(transceiver.kind))
        try:
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, f"could not answer ({type(exc).__name__})") from None
        self._negotiated()
        await self._flush_early_candidates()
        published = self._collect_publications()
        return ServerAnswerMessage(sdp=self._local_sdp(), mids=self._mid_table()), published

    def _bind_playback(self, transceiver: RTCRtpTransceiver, candidates: list[UpTrack]) -> None:
        up = next((u for u in candidates if u.track.sid not in self.subscriptions), None)
        if up is None:
            transceiver.direction = "inactive"
            return
        codecs = [
            c
            for c in taps.negotiated_codecs(transceiver)
            if c.mimeType.lower() in (up.codec.mimeType.lower(), f"{transceiver.kind}/rtx")
        ]
        primary = [c for c in codecs if c.mimeType.lower() == up.codec.mimeType.lower()]
        if not primary:
            transceiver.direction = "inactive"
            return
        taps.restrict_codecs(transceiver, primary[0], codecs)
        transceiver.sender.replaceTrack(SilentTrack(transceiver.kind, up.track.sid))
        transceiver.direction = "sendonly"
        self._subscribe(up, transceiver)

    def _collect_publications(self) -> list[UpTrack]:
        published: list[UpTrack] = []
        for transceiver, request in list(self._pending_publications.items()):
            if transceiver.currentDirection not in ("recvonly", "sendrecv"):
                if transceiver.currentDirection is not None:
                    del self._pending_publications[transceiver]  # the client declined it
                continue
            del self._pending_publications[transceiver]
            codecs = taps.negotiated_codecs(transceiver)
            track = Track(
                sid=new_track_sid(),
                participant_sid=self.sid,
                kind=request.kind,
                source=request.source,
                codec=codecs[0].mimeType,
            )
            up = UpTrack(track, transceiver.receiver, codecs[0])
            self.published[track.sid] = up
            self._mids[transceiver] = MidInfo(
                kind=request.kind, direction="send", track_sid=track.sid, participant_sid=self.sid
            )
            published.append(up)
        return published

    async def add_candidate(self, candidate: IceCandidate | None) -> None:
        if candidate is not None and candidate.candidate:
            parse_candidate(candidate)  # reject garbage now, even if it must wait
        if self.pc.remoteDescription is None:
            if len(self._early_candidates) < 64:
                self._early_candidates.append(candidate)
            return
        await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: IceCandidate | None) -> None:
        if candidate is None or not candidate.candidate:
            await self.pc.addIceCandidate(None)
            return
        try:
            await self.pc.addIceCandidate(parse_candidate(candidate))
        except VitrineError:
            raise
        except Exception:
            raise VitrineError(ErrorCode.INVALID_CANDIDATE, "ICE candidate was not accepted") from None

    async def _flush_early_candidates(self) -> None:
        pending, self._early_candidates = self._early_candidates, []
        for candidate in pending:
            try:
                await self._add_candidate(candidate)
            except VitrineError:
                logger.info("dropped an unusable early ICE candidate for %s", self.sid)

    def _local_sdp(self) -> str:
        sdp = self.pc.localDescription.sdp
        if self.public_ip:
            sdp = with_public_ip(sdp, self.public_ip)
        return sdp

    def _mid_table(self) -> dict[str, MidInfo]:
        return {t.mid: info for t, info in self._mids.items() if t.mid is not None}

    # -- a peer that is gone ------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Closed by us, or its connection is over: nothing new may be added to it."""
        return self.closed or self.gone is not None or self.pc.connectionState in ENDED_STATES

    def _negotiated(self) -> None:
        """A remote description is set: the peer can reach us from now on, so its silence counts."""
        if self._negotiated_at is None:
            self._negotiated_at = time.monotonic()

    @property
    def negotiated(self) -> bool:
        """A remote description was applied: its first handshake has started."""
        return self._negotiated_at is not None

    def hold_handshake(self, release: Callable[[], None]) -> None:
        """The worker's handshake slot for the handshake about to start; given back when it is over (at once, if
        the peer is already closed)."""
        earlier, self._on_handshake_over = self._on_handshake_over, release
        if earlier is not None:
            earlier()
        if self.closed:
            self.handshake_over()

    def handshake_over(self) -> None:
        """The connection's first handshake ended, or none is coming yet: the worker's slot goes to the next join."""
        over, self._on_handshake_over = self._on_handshake_over, None
        if over is not None:
            over()

    def _connection_changed(self) -> None:
        if self.pc.connectionState in HANDSHAKE_OVER:
            self.handshake_over()
        reason = ENDED_STATES.get(self.pc.connectionState)
        if reason is not None:
            self.report_gone(reason)

    def silent_for(self, now: float) -> float:
        """Seconds since anything arrived from the peer (since its transport could first hear it, if
        nothing ever did); 0 while it has nothing to talk over (no negotiated transport yet)."""
        if self._negotiated_at is None:
            return 0.0
        return now - max(self._negotiated_at, last_heard(self.pc) or 0.0)

    def report_gone(self, reason: GoneReason) -> None:
        """The connection ended without a leave: tell the worker once, unless we are closing it ourselves."""
        if self.closed or self.gone is not None:
            return
        self.gone = reason
        logger.info("peer connection of %s is gone (%s)", self.sid, reason.value)
        if self._on_gone is not None:
            self._on_gone(self, reason)

    # -- teardown and introspection -------------------------------------------

    def receivers(self) -> list[RTCRtpReceiver]:
        return [up.receiver for up in self.published.values()]

    def senders(self) -> list[RTCRtpSender]:
        return [down.sender for down in self.subscriptions.values()]

    async def close(self) -> None:
        """Release everything; never raises, so a failed join, publish or leave still frees its room. A
        connection aiortc left half-built (a remote description it applied in part) can raise in its own
        ``close()``: its transports are then stopped one by one."""
        if self.closed:
            return
        self.closed = True
        self.handshake_over()
        try:
            if self.evidence is not None:
                await self.evidence.close()
            for track_sid in list(self.subscriptions):
                self.remove_subscription(track_sid)
            for up in self.published.values():
                up.close()
        except Exception:
            logger.exception("releasing the tracks of %s failed", self.sid)
        try:
            await self.pc.close()
        except Exception as exc:
            logger.info(
                "the peer connection of %s did not close cleanly (%s): stopping its transports",
                self.sid,
                type(exc).__name__,
            )
            await stop_transports(self.pc)


def _source_for(kind: TrackKind) -> TrackSource:
    return TrackSource.CAMERA if kind == TrackKind.VIDEO else TrackSource.MICROPHONE


def publish_preferences(kind: str) -> list:
    capabilities = cast(RTCRtpCapabilities, RTCRtpReceiver.getCapabilities(kind)).codecs  # None only for other kinds
    wanted = PUBLISH_CODECS[kind]
    return sorted(
        (c for c in capabilities if c.mimeType.lower() in wanted), key=lambda c: wanted.index(c.mimeType.lower())
    )


def _forward_preferences(up: UpTrack) -> list:
    """Offer a subscriber exactly the publisher's codec (and RTX), so bytes pass through unchanged."""
    capabilities = RTCRtpSender.getCapabilities(up.track.kind.value).codecs
    mime = up.codec.mimeType.lower()
    primary = [
        c
        for c in capabilities
        if c.mimeType.lower() == mime
        and all(
            c.parameters.get(k) == v
            for k, v in up.codec.parameters.items()
            if k in ("packetization-mode", "profile-level-id")
        )
    ]
    if not primary:
        primary = [c for c in capabilities if c.mimeType.lower() == mime]
    rtx = [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
    return primary[:1] + rtx
