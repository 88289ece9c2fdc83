"""Encoded frames from RTP with aiortc's own JitterBuffer, for the recorder.

``JitterBuffer`` joins the depayloaded bytes that ``RTCRtpReceiver`` stores in
the packet's private ``_data`` attribute; the recorder depayloads itself (the
receiver is tapped and never decodes), so it sets that attribute here.
"""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket


def jitter_add(buffer: JitterBuffer, packet: RtpPacket, data: bytes) -> tuple[bool, JitterFrame | None]:
    """Add a packet whose payload is already depayloaded; return (picture lost, completed frame or None)."""
    packet._data = data  # type: ignore[attr-defined]
    return buffer.add(packet)
