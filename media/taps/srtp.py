"""SRTP sessions with room for RTP from a full 1500-byte MTU, and a count of the packets that still do not fit.

pylibsrtp's ``Session`` protects and unprotects in one fixed 1500-byte buffer, and before protecting reserves
room for the largest trailer libsrtp could append (a 16-byte tag and a 128-byte MKI): RTP over 1356 bytes is
refused with ``ValueError: packet is too long``. Browsers packetize near 1200 bytes, so nothing showed it, but
encoders fill their MTU: GStreamer's payloaders default to ``mtu=1400``, OBS and hardware encoders vary. Such a
publisher's keyframes were dropped at every subscriber, which then saw no picture at all.

``WideSession`` is aiortc's session with a larger buffer: RTP of a whole 1500-byte datagram, plus what the
forwarder adds (an abs-send-time extension; an RTX header), plus the trailer. Installed on import of
``media.taps``: a packet that fit before is protected exactly as before. A forwarded packet longer than that
(a same-host encoder over loopback's 64 KiB MTU can send one) is not sent: ``SenderBinding.send`` counts it in
``OversizeRtp`` and logs it at a bounded rate, and the other subscribers still get theirs.
"""

from __future__ import annotations

import logging

import aiortc.rtcdtlstransport
import pylibsrtp
from pylibsrtp._binding import ffi

from vitrine.core.ratelog import RateLimitedLog

logger = logging.getLogger(__name__)

MTU_BYTES = 1500
FORWARDING_GROWTH_BYTES = 64  # header extensions the forwarder sets, RTX's original sequence number, padding
SRTP_BUFFER_BYTES = MTU_BYTES + FORWARDING_GROWTH_BYTES + pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN
MAX_PROTECTED_RTP_BYTES = SRTP_BUFFER_BYTES - pylibsrtp.SRTP_MAX_TRAILER_LEN


class WideSession(pylibsrtp.Session):
    """``pylibsrtp.Session`` whose work buffer holds ``SRTP_BUFFER_BYTES``, not 1500."""

    def __init__(self, policy: pylibsrtp.Policy | None = None) -> None:
        super().__init__(policy)
        self._cdata = ffi.new("char[]", SRTP_BUFFER_BYTES)
        self._buffer = ffi.buffer(self._cdata)


class OversizeRtp:
    """Forwarded RTP packets too long to protect even so, dropped, since the process started."""

    dropped = 0
    log = RateLimitedLog(logger)

    @classmethod
    def record(cls, size: int) -> None:
        cls.dropped += 1
        cls.log.warning(
            "too_long", "dropped a %d-byte RTP packet: SRTP protects at most %d bytes", size, MAX_PROTECTED_RTP_BYTES
        )


def _install() -> None:
    aiortc.rtcdtlstransport.Session = WideSession  # type: ignore[misc]


_install()
