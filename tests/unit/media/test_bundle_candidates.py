"""Candidates written in the first bundled m-line only reach the shared transport (media/taps/bundle.py).

The offer is GStreamer 1.22 ``webrtcbin``'s, as it reached the worker (video, then bundle-only audio), with
addresses from the documentation ranges. No local description is set, so no check is ever sent.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.taps import bundle

MEDIA = {
    "video": ("video0", "96", ["a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli"]),
    "audio": ("audio1", "111", ["a=rtpmap:111 OPUS/48000/2"]),
}
CANDIDATES = [
    "a=candidate:1 1 UDP 2015363327 198.51.100.7 52824 typ host",
    "a=candidate:2 1 TCP 1010827519 198.51.100.7 60843 typ host tcptype passive",
    "a=candidate:4 1 UDP 2015363583 2001:db8::7 52451 typ host",
]


def gstreamer_offer(candidates_in: tuple[str, ...] = ("video",)) -> str:
    lines = ["v=0", "o=- 3787119611598264131 0 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=ice-options:trickle"]
    lines.append("a=group:BUNDLE video0 audio1")
    for kind, (mid, payload_type, codec) in MEDIA.items():
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {payload_type}",
            "c=IN IP4 0.0.0.0",
            "a=setup:actpass",
            "a=ice-ufrag:g7DLx6NAnmVbWbnmmE/xFAcwlq77dXS/",
            "a=ice-pwd:wEscPW5RvFBv3SCWRph5qlO1VEI6UjX9",
            "a=rtcp-mux",
            "a=sendonly",
            *codec,
            f"a=mid:{mid}",
            "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
            *(CANDIDATES if kind in candidates_in else []),
        ]
    return "\r\n".join(lines) + "\r\n"


def remote_addresses(pc: RTCPeerConnection) -> list[tuple[str, int, str]]:
    transports = {t.receiver.transport.transport for t in pc.getTransceivers()}
    assert len(transports) == 1  # max-bundle: one transport from the start
    return sorted((c.ip, c.port, c.protocol.lower()) for c in transports.pop().getRemoteCandidates())


def bundled_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


EXPECTED = [("198.51.100.7", 52824, "udp"), ("198.51.100.7", 60843, "tcp"), ("2001:db8::7", 52451, "udp")]


async def test_aiortc_alone_loses_the_first_m_lines_candidates() -> None:
    pc = bundled_pc()
    try:
        await bundle._original_set_remote_description(pc, RTCSessionDescription(gstreamer_offer(), "offer"))
        assert remote_addresses(pc) == []
    finally:
        await pc.close()


async def test_the_first_m_lines_candidates_reach_the_shared_transport() -> None:
    pc = bundled_pc()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(gstreamer_offer(), "offer"))
        assert remote_addresses(pc) == EXPECTED
    finally:
        await pc.close()


async def test_candidates_repeated_in_every_m_line_are_added_once() -> None:
    pc = bundled_pc()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(gstreamer_offer(("video", "audio")), "offer"))
        assert remote_addresses(pc) == EXPECTED
    finally:
        await pc.close()
