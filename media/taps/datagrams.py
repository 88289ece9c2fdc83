"""Datagram interception on aioice's sockets: the foreign-datagram guard, per-connection
hooks (the load harness impairs links there), when the peer was last heard from, and fast
ICE/DTLS handshake retransmission."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol, cast

import aioice.ice
import aioice.stun
from aiortc import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from OpenSSL import SSL

from media.taps import fastpath

_original_datagram_received = aioice.ice.StunProtocol.datagram_received
_original_send_stun = aioice.ice.StunProtocol.send_stun
_original_send_data = aioice.ice.StunProtocol.send_data


class DatagramHook(Protocol):
    """Sees a peer connection's UDP datagrams on the wire (the load harness impairs them here)."""

    def inbound(self, data: bytes, deliver: Callable[[], None]) -> None: ...

    def outbound(self, data: bytes, send: Callable[[], None]) -> None: ...


_hooks: weakref.WeakKeyDictionary[aioice.ice.Connection, DatagramHook] = weakref.WeakKeyDictionary()


class DatagramGuard:
    """Drop non-STUN datagrams from anyone but the ICE peer, before they reach DTLS or SRTP.

    A forged DTLS ClientHello or junk RTP from another address must not touch a
    call (the class of FreeSWITCH CVE-2023-51443). STUN still reaches aioice,
    which authenticates it with the ICE credentials.
    """

    enabled = False
    dropped = 0

    @classmethod
    def install(cls) -> None:
        cls.enabled = True
        _install_datagram_patches()


def hook_datagrams(pc: Any, hook: DatagramHook) -> None:
    """Route every datagram of ``pc``'s ICE transports through ``hook``.

    Call it after the local description is set (the transports exist) and
    before the remote peer learns our candidates.
    """
    _install_datagram_patches()
    for transceiver in pc.getTransceivers():
        _hooks[transceiver.receiver.transport.transport._connection] = hook
    if pc.sctp is not None:
        _hooks[pc.sctp.transport.transport._connection] = hook


def deliver_rtp_now(transport: RTCDtlsTransport) -> None:
    """From now on, hand ``transport``'s SRTP data packets to its tapped receivers in the socket callback."""
    _install_datagram_patches()
    fastpath.register(transport)


def _install_datagram_patches() -> None:
    aioice.ice.StunProtocol.datagram_received = _datagram_received  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_stun = _send_stun  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_data = _send_data  # type: ignore[method-assign]


def _datagram_received(self: aioice.ice.StunProtocol, data: bytes | str, addr: tuple[Any, ...]) -> None:
    data = cast(bytes, data)  # a datagram socket's: aioice's own datagram_received casts it the same way
    hook = _hooks.get(self.receiver) if _hooks else None
    if hook is not None:
        hook.inbound(data, lambda: _checked_receive(self, data, addr))
    else:
        _checked_receive(self, data, addr)


def _checked_receive(self: aioice.ice.StunProtocol, data: bytes, addr: tuple[Any, ...]) -> None:
    if data and 20 <= data[0] <= 63 and HandshakeAccelerator.installed:  # DTLS
        _dtls_received[self.receiver] = _dtls_received.get(self.receiver, 0) + 1
        if data[0] <= 22:
            _note_handshake_datagram(self.receiver, data)
    if _from_peer(self, addr):
        self.receiver._vitrine_heard_at = time.monotonic()  # type: ignore[attr-defined]
    elif DatagramGuard.enabled and data and data[0] > 3:  # STUN starts with two zero bits; DTLS, RTP never
        DatagramGuard.dropped += 1
        return
    if data and 127 < data[0] < 192 and fastpath.receive(self.receiver, data):  # RTP/RTCP
        return
    _original_datagram_received(self, data, addr)


def _from_peer(protocol: aioice.ice.StunProtocol, addr: tuple[Any, ...]) -> bool:
    """Whether a datagram comes from the ICE peer: the nominated pair's address, or before nomination
    that of a candidate pair we check."""
    source = (addr[0], addr[1])
    connection = protocol.receiver
    pair = connection._nominated.get(protocol.local_candidate.component)
    if pair is not None:
        return pair.remote_addr == source
    return any(p.remote_addr == source for p in connection._check_list if p.protocol is protocol)


def last_heard(pc: Any) -> float | None:
    """When (``time.monotonic()``) a datagram of any kind, its consent checks included, last came from
    ``pc``'s ICE peer; None if none ever did. A peer that has gone without a word (a killed process, a
    lost network) shows as a growing silence here long before ICE consent (about 30 s) expires."""
    connections = {t.receiver.transport.transport._connection for t in pc.getTransceivers()}
    if pc.sctp is not None:
        connections.add(pc.sctp.transport.transport._connection)
    heard = [at for c in connections if (at := getattr(c, "_vitrine_heard_at", None)) is not None]
    return max(heard, default=None)


def _send_stun(self: aioice.ice.StunProtocol, message: Any, addr: tuple[str, int]) -> None:
    hook = _hooks.get(self.receiver) if _hooks else None
    if hook is None:
        _original_send_stun(self, message, addr)
    else:
        data = bytes(message)
        hook.outbound(data, lambda: _sendto_if_open(self, data, addr))


async def _send_data(self: aioice.ice.StunProtocol, data: bytes, addr: tuple[str, int]) -> None:
    hook = _hooks.get(self.receiver) if _hooks else None
    if hook is None:
        self.transport.sendto(data, addr)
    else:
        hook.outbound(data, lambda: _sendto_if_open(self, data, addr))


def _sendto_if_open(protocol: aioice.ice.StunProtocol, data: bytes, addr: tuple[str, int]) -> None:
    """A hook may send later: by then the call may have ended and the socket closed."""
    transport = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.sendto(data, addr)


# Fast handshake retransmission -------------------------------------------------

STUN_RTO_S = 0.1  # aioice: 0.5 s, doubling
STUN_RTO_MAX_S = 0.5
STUN_TRIES = 14
DTLS_RETRANSMIT_S = 0.1  # OpenSSL: 1 s, then 2 s, then 4 s
DTLS_RETRANSMIT_MAX_S = 0.4


class HandshakeAccelerator:
    """Retransmit lost ICE checks and DTLS flights in about 100 ms instead of 0.5-1 s and more.

    On a lossy link the join time is dominated by those timers. A retransmitted
    STUN check or DTLS flight is harmless: duplicates are discarded, and a DTLS
    peer that sees our last flight again answers with its own.
    """

    installed = False
    dtls_flights_resent = 0

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        cls.installed = True
        aioice.stun.RETRY_RTO = STUN_RTO_S
        aioice.stun.RETRY_MAX = STUN_TRIES - 1
        aioice.stun.Transaction._Transaction__retry = _capped_stun_retry  # type: ignore[attr-defined]
        _install_datagram_patches()
        RTCDtlsTransport._write_ssl = _write_ssl_remembering_flight  # type: ignore[method-assign]
        RTCDtlsTransport._do_handshake = _handshake_with_fast_retransmit  # type: ignore[method-assign]


_original_stun_retry = aioice.stun.Transaction._Transaction__retry  # type: ignore[attr-defined]
_original_do_handshake = RTCDtlsTransport._do_handshake
_D = "_RTCDtlsTransport__"


def _capped_stun_retry(self: Any) -> None:
    _original_stun_retry(self)
    delay = self._Transaction__timeout_delay
    self._Transaction__timeout_delay = min(delay, STUN_RTO_MAX_S)


# DTLS datagrams received, by ICE connection: handshake progress, unlike SRTP that
# a peer may already send while its last flight is still in flight.
_dtls_received: weakref.WeakKeyDictionary[aioice.ice.Connection, int] = weakref.WeakKeyDictionary()

# The DTLS transport of each ICE connection, and the handshake datagrams it received.
# A peer that repeats a datagram has not seen our answer to it: OpenSSL would wait
# for its own timer (a second or more) to resend, so resend our last flight now.
# The transport is held weakly: it leads back to its connection, the key, so a strong
# value would keep every finished peer connection alive.
_dtls_by_connection: weakref.WeakKeyDictionary[aioice.ice.Connection, weakref.ref[RTCDtlsTransport]] = (
    weakref.WeakKeyDictionary()
)
_handshake_seen: weakref.WeakKeyDictionary[aioice.ice.Connection, set[int]] = weakref.WeakKeyDictionary()


DUPLICATE_ANSWER_WINDOW_S = 3.0  # after our handshake completes, answer repeats this long
DUPLICATE_ANSWER_INTERVAL_S = 0.1  # and never more often than this per connection


def _note_handshake_datagram(connection: aioice.ice.Connection, data: bytes) -> None:
    seen = _handshake_seen.setdefault(connection, set())
    fingerprint = hash(data)
    if fingerprint not in seen:
        if len(seen) < 64:
            seen.add(fingerprint)
        return
    known = _dtls_by_connection.get(connection)
    transport = known() if known is not None else None
    if transport is None:
        return
    # Both ends answer repeats, so an answer must not itself start an endless exchange
    # of "repeats": answer only around the handshake, and at a bounded rate.
    now = time.monotonic()
    finished_at = getattr(transport, "_vitrine_finished_at", None)
    if finished_at is not None and now - finished_at > DUPLICATE_ANSWER_WINDOW_S:
        return
    if now - getattr(transport, "_vitrine_answered_at", 0.0) < DUPLICATE_ANSWER_INTERVAL_S:
        return
    transport._vitrine_answered_at = now  # type: ignore[attr-defined]
    _resend_flight(transport)


def _resend_flight(transport: RTCDtlsTransport) -> None:
    if transport._state not in (DtlsState.CONNECTING, DtlsState.CONNECTED):
        return
    for datagram in list(getattr(transport, "_vitrine_flight", ())):
        asyncio.ensure_future(transport.transport._send(datagram))
        HandshakeAccelerator.dtls_flights_resent += 1


async def _write_ssl_remembering_flight(self: RTCDtlsTransport) -> None:
    try:
        data = cast(SSL.Connection, self._ssl).bio_read(1500)  # set by start(), before any handshake write
    except SSL.Error:
        data = b""
    if data:
        if not self.encrypted:
            _dtls_by_connection[self.transport._connection] = weakref.ref(self)
            received = _dtls_received.get(self.transport._connection, 0)
            if getattr(self, "_vitrine_flight_rx", None) != received:
                self._vitrine_flight = []  # type: ignore[attr-defined]
                self._vitrine_flight_rx = received  # type: ignore[attr-defined]
            self._vitrine_flight.append(data)  # type: ignore[attr-defined]
        await self.transport._send(data)
        setattr(self, _D + "tx_bytes", getattr(self, _D + "tx_bytes") + len(data))
        setattr(self, _D + "tx_packets", getattr(self, _D + "tx_packets") + 1)


async def _handshake_with_fast_retransmit(self: RTCDtlsTransport) -> None:
    watchdog = asyncio.ensure_future(_resend_last_flight(self))
    try:
        await _original_do_handshake(self)
    finally:
        watchdog.cancel()
        self._vitrine_finished_at = time.monotonic()  # type: ignore[attr-defined]


async def _resend_last_flight(transport: RTCDtlsTransport) -> None:
    """Resend our last flight while the peer stays silent, backing off to DTLS_RETRANSMIT_MAX_S."""
    delay = DTLS_RETRANSMIT_S
    connection = transport.transport._connection
    seen = _dtls_received.get(connection, 0)
    while not transport.encrypted:
        await asyncio.sleep(delay)
        received = _dtls_received.get(connection, 0)
        if received != seen:
            seen, delay = received, DTLS_RETRANSMIT_S  # the peer spoke: its flight is being handled
            continue
        _resend_flight(transport)
        delay = min(delay * 1.5, DTLS_RETRANSMIT_MAX_S)
