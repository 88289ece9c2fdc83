"""Remote candidates of every bundled m-line reach the transport they share.

Under max-bundle aiortc (1.16) gives all m-lines one ICE transport from the start, and ``setRemoteDescription``
keeps one m-line per transport to take candidates from: the last. A peer that writes its candidates into the
first m-line only (BUNDLE allows it; GStreamer's ``webrtcbin`` does, with audio after video) therefore had none
of them added. ICE still succeeded when its own checks reached us, as peer-reflexive candidates, but the worker
never checked towards the peer. After aiortc has applied a description, the candidates of the m-lines it skipped
are added to their transport; addresses it already has are left alone, so a browser's offer (the same candidates
in every m-line, or none, trickled) changes nothing. Installed on import of ``media.taps``.

The candidates are read from the description aiortc has just parsed and kept (its private
``__remoteDescription()``), not from a parse of our own: an SDP parse is about a tenth of what applying an offer
costs the worker, and every WHIP/WHEP offer carries candidates (issue 17, a join's cost).
"""

from __future__ import annotations

from aiortc import RTCIceTransport, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

_original_set_remote_description = RTCPeerConnection.setRemoteDescription


async def _set_remote_description(self: RTCPeerConnection, sessionDescription: RTCSessionDescription) -> None:
    await _original_set_remote_description(self, sessionDescription)
    if "a=candidate:" in sessionDescription.sdp:  # trickled candidates (browsers) need nothing more
        await add_skipped_candidates(self, self._RTCPeerConnection__remoteDescription())  # type: ignore[attr-defined]


async def add_skipped_candidates(pc: RTCPeerConnection, description: aiortc_sdp.SessionDescription) -> None:
    """Add to each m-line's ICE transport the candidates of ``description`` it does not have yet."""
    transports: dict[str, RTCIceTransport] = {
        t.mid: t.receiver.transport.transport for t in pc.getTransceivers() if t.mid is not None
    }
    if pc.sctp is not None and pc.sctp.mid is not None:
        transports[pc.sctp.mid] = pc.sctp.transport.transport
    for media in description.media:
        transport = transports.get(media.rtp.muxId)
        if transport is None or not media.ice_candidates:
            continue
        known = {(c.ip, c.port, c.protocol.lower()) for c in transport.getRemoteCandidates()}
        for candidate in media.ice_candidates:
            address = (candidate.ip, candidate.port, candidate.protocol.lower())
            if address not in known:
                known.add(address)
                await transport.addRemoteCandidate(candidate)


def _install() -> None:
    if RTCPeerConnection.setRemoteDescription is not _set_remote_description:
        RTCPeerConnection.setRemoteDescription = _set_remote_description  # type: ignore[method-assign]


_install()
