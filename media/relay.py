"""``RelayIn``: a relay worker's copy of a live room's tracks, pulled from the room's origin worker.

A show's audience can outgrow one event loop, so other workers (other cores, other machines)
serve shares of its viewers. Each such relay worker opens one peer connection to the origin
worker, offering to receive every published track. Signaling carries the offer to the origin,
where it is answered like any WHEP player's (a hidden subscriber, ``relay:<worker>``), and
brings back the answer with its ``mids`` table, which says which origin track each m-line carries.
Every received track becomes an ``UpTrack`` under the origin's track sid and participant sid, so
a viewer on the relay is told exactly what a viewer on the origin would be; the forwarder never
knows the difference. Keyframe requests and NACKs from the relay's viewers go upstream through
this connection to the origin, which answers them from its own history or asks the publisher.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import taps
from media.forwarder import UpTrack
from media.peer import publish_preferences
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Track
from vitrine.core.wire.rtc import MidInfo


class RelayIn:
    def __init__(self, tracks: list[Track]) -> None:
        self.tracks = {track.sid: track for track in tracks}
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.ups: dict[str, UpTrack] = {}

    async def offer(self) -> str:
        """An offer to receive one m-line per origin track (host candidates gathered, nothing trickled)."""
        for track in self.tracks.values():
            transceiver = self.pc.addTransceiver(track.kind.value, direction="recvonly")
            transceiver.setCodecPreferences(publish_preferences(track.kind.value))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def apply_answer(self, sdp: str, mids: dict[str, MidInfo]) -> list[UpTrack]:
        """The origin's answer: each m-line it bound becomes an ``UpTrack`` of the track it carries."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise VitrineError(ErrorCode.NEGOTIATION_FAILED, f"relay answer refused ({type(exc).__name__})") from None
        for transceiver in self.pc.getTransceivers():
            info = mids.get(transceiver.mid or "")
            track = self.tracks.get(info.track_sid or "") if info else None
            codecs = taps.negotiated_codecs(transceiver)
            if track is None or not codecs or transceiver.currentDirection != "recvonly":
                continue
            self.ups[track.sid] = UpTrack(track, transceiver.receiver, codecs[0])
        return list(self.ups.values())

    async def close(self) -> None:
        for up in self.ups.values():
            up.close()
        await self.pc.close()
