"""Validate client SDP and ICE candidates before aiortc sees them.

aiortc parses with ``assert`` in places (skipped under ``python -O``) and can
fail half-way through applying a description, so every check that matters is
made here first and every parser failure becomes a typed error.
"""

from __future__ import annotations

import ipaddress

from aiortc import RTCIceCandidate
from aiortc import sdp as aiortc_sdp

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.wire.rtc import IceCandidate

MAX_SDP_LINES = 4000
MAX_MEDIA_SECTIONS = 64
SENDING_DIRECTIONS = frozenset({"sendonly", "sendrecv"})
RTCP_CONFLICTING_PAYLOAD_TYPES = range(72, 77)  # RFC 5761: clash with RTCP packet types when muxed


def parse_sdp(text: str, max_bytes: int) -> aiortc_sdp.SessionDescription:
    """Parse a remote description or raise INVALID_SDP with a reason a developer can act on."""
    if not isinstance(text, str) or not text.strip():
        raise VitrineError(ErrorCode.INVALID_SDP, "SDP is empty")
    if len(text.encode()) > max_bytes:
        raise VitrineError(ErrorCode.INVALID_SDP, f"SDP exceeds {max_bytes} bytes")
    if text.count("\n") > MAX_SDP_LINES:
        raise VitrineError(ErrorCode.INVALID_SDP, f"SDP exceeds {MAX_SDP_LINES} lines")
    if not text.lstrip().startswith("v=0"):
        raise VitrineError(ErrorCode.INVALID_SDP, "SDP must start with v=0")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, AssertionError, IndexError, KeyError...
        raise VitrineError(ErrorCode.INVALID_SDP, f"SDP could not be parsed ({type(exc).__name__})") from None
    if not description.media:
        raise VitrineError(ErrorCode.INVALID_SDP, "SDP has no media sections")
    if len(description.media) > MAX_MEDIA_SECTIONS:
        raise VitrineError(ErrorCode.INVALID_SDP, f"SDP has more than {MAX_MEDIA_SECTIONS} media sections")
    _check_address("the session's c= line", description.host)
    for index, media in enumerate(description.media):
        if media.kind not in ("audio", "video", "application"):
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: unsupported media kind")
        if not media.ice or not media.ice.usernameFragment or not media.ice.password:
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: missing ice-ufrag or ice-pwd")
        if not media.dtls or not media.dtls.fingerprints:
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: missing DTLS fingerprint")
        _check_address(f"m-line {index}: c= line", media.host)
        _check_address(f"m-line {index}: a=rtcp", media.rtcp_host)
        if media.kind != "application" and not media.rtcp_mux:
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: rtcp-mux is required")
        if media.kind != "application" and media.rtp.muxId in (None, ""):
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: missing a=mid")
        if media.kind != "application" and not media.rtp.codecs:
            raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: no codecs")
        for pt in media.fmt if media.kind != "application" else ():
            if not isinstance(pt, int) or not 0 <= pt <= 127 or pt in RTCP_CONFLICTING_PAYLOAD_TYPES:
                raise VitrineError(ErrorCode.INVALID_SDP, f"m-line {index}: payload type out of range")
    return description


def _check_address(where: str, host: str | None) -> None:
    """aiortc keeps any word as a connection address and fails on it only later (a trickled candidate then
    raises in the worker): refuse anything but an IP literal here, while nothing is allocated yet."""
    if host is None:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise VitrineError(ErrorCode.INVALID_SDP, f"{where}: the address must be an IP address") from None


def sends_media(description: aiortc_sdp.SessionDescription) -> bool:
    """Whether the remote side offers to send audio or video."""
    return any(m.kind in ("audio", "video") and m.direction in SENDING_DIRECTIONS for m in description.media)


def parse_candidate(candidate: IceCandidate) -> RTCIceCandidate:
    """Turn a trickled ``RTCIceCandidateInit`` into aiortc's candidate, or raise INVALID_CANDIDATE."""
    text = candidate.candidate.strip()
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        bits = text.split()
        if len(bits) < 8 or bits[6] != "typ":
            raise ValueError("too few fields")
        parsed = aiortc_sdp.candidate_from_sdp(text)
        if not (0 < parsed.port < 65536) or parsed.protocol.lower() not in ("udp", "tcp"):
            raise ValueError("bad port or protocol")
    except Exception:
        raise VitrineError(ErrorCode.INVALID_CANDIDATE, "ICE candidate could not be parsed") from None
    parsed.sdpMid = candidate.sdpMid
    parsed.sdpMLineIndex = candidate.sdpMLineIndex
    return parsed


def with_public_ip(sdp: str, public_ip: str) -> str:
    """Advertise ``public_ip`` in place of host candidate addresses (1:1 NAT, e.g. a cloud VM)."""
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:") and " typ host" in line:
            bits = line.split(" ")
            bits[4] = public_ip
            line = " ".join(bits)
        elif line.startswith("c=IN IP4 "):
            line = f"c=IN IP4 {public_ip}"
        lines.append(line)
    return "\r\n".join(lines)
