"""SRTP media taken from the socket callback: no queue, no task and no coroutine per packet.

aiortc hands every datagram through aioice's queue to the DTLS transport's
task, then down four coroutines to the receiver. A forwarding worker receives
every publisher's packets, so that hop is a large share of its CPU, and under
load every hop waits one turn of a busy event loop. For a transport marked with
``deliver_rtp_now``, SRTP data packets are unprotected, parsed and routed in the
datagram callback itself, into receivers tapped with ``tap_receiver_sync``.
DTLS, SRTCP and every other transport keep aiortc's path.

Packets that were queued before the DTLS handshake finished may still be in
aiortc's queue when the first fast packet arrives; the forwarder already
tolerates that reordering, as it does the network's.

The registry is keyed weakly by the ICE connection and holds the transport by a weak reference: the
transport leads back to its connection, so a strong value would keep both, and the whole finished peer
connection, alive for the life of the process.
"""

from __future__ import annotations

import logging
import weakref

import aioice.ice
import pylibsrtp
from aiortc import RTCDtlsTransport, clock
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RtpPacket, is_rtcp

from vitrine.core.ratelog import RateLimitedLog
from vitrine.core.tasks import TaskSet

logger = logging.getLogger(__name__)
_handler_log = RateLimitedLog(logger)

_D = "_RTCDtlsTransport__"

_transports: weakref.WeakKeyDictionary[aioice.ice.Connection, weakref.ref[RTCDtlsTransport]] = (
    weakref.WeakKeyDictionary()
)
_pending = TaskSet()  # untapped receivers' aiortc handling, in arrival order


class FastPathCounters:
    delivered = 0
    dropped = 0  # failed SRTP authentication or RTP parsing, as aiortc would drop them
    handler_errors = 0


def register(transport: RTCDtlsTransport) -> None:
    """Take this transport's SRTP data packets from the socket callback (``datagrams.deliver_rtp_now``)."""
    _transports[transport.transport._connection] = weakref.ref(transport)


def receive(connection: aioice.ice.Connection, data: bytes) -> bool:
    """Handle ``data`` if it is SRTP for a marked, connected transport; False leaves it to aiortc."""
    marked = _transports.get(connection)
    transport = marked() if marked is not None else None
    if transport is None or transport._rx_srtp is None or transport._state != DtlsState.CONNECTED:
        return False
    if is_rtcp(data):
        return False
    setattr(transport, _D + "rx_bytes", getattr(transport, _D + "rx_bytes") + len(data))
    setattr(transport, _D + "rx_packets", getattr(transport, _D + "rx_packets") + 1)
    try:
        packet = RtpPacket.parse(transport._rx_srtp.unprotect(data), transport._rtp_header_extensions_map)
    except (pylibsrtp.Error, ValueError):
        FastPathCounters.dropped += 1
        return True
    receiver = transport._rtp_router.route_rtp(packet)
    if receiver is None:
        return True
    sink = getattr(receiver, "_vitrine_rtp_sink", None)
    if sink is None:  # an untapped receiver keeps aiortc's handling, in arrival order
        _pending.spawn(receiver._handle_rtp_packet(packet, arrival_time_ms=clock.current_ms()))
        return True
    try:
        sink(packet)
    except Exception:  # one bad packet or handler bug must not take the socket's callback down
        FastPathCounters.handler_errors += 1
        _handler_log.warning("handler", "forwarding an RTP packet failed", exc_info=True)  # once a minute
    FastPathCounters.delivered += 1
    return True
