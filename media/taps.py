"""Every use of aiortc/aioice private API lives here, and only here.

The forwarder needs to see decrypted RTP before aiortc's jitter buffer and
decoder, send RTP on a subscriber's DTLS transport without aiortc's encoder,
and receive the RTCP feedback addressed to a sender. aiortc exposes none of
this publicly, so these functions reach into name-mangled attributes of the
pinned aiortc 1.16 / aioice 0.13. ``tests/test_media_taps.py`` fails loudly
if an upgrade moves any of them.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aioice.ice
import aioice.stun
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import AnyRtcpPacket, HeaderExtensionsMap, RtpPacket, unwrap_rtx
from OpenSSL import SSL

RtpHandler = Callable[[RtpPacket, RTCRtpCodecParameters], Awaitable[None]]
RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[None]]

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"

PRIVATE_ATTRIBUTES = {
    RTCRtpReceiver: ("_handle_rtp_packet", "_send_rtcp_pli", "_send_rtcp_nack", "receive", "_enabled"),
    RTCRtpSender: ("_handle_rtcp_packet", "_ssrc", "_rtx_ssrc", "_retransmit", "_send_keyframe"),
    RTCDtlsTransport: ("_send_rtp", "_rx_srtp", "_tx_srtp", "_state"),
    RTCRtpTransceiver: ("_codecs", "_offerDirection"),
    HeaderExtensionsMap: ("_HeaderExtensionsMap__ids",),
}
# aioice: Connection._nominated, ._check_list, ._protocols; StunProtocol.datagram_received,
# .local_candidate, .receiver; CandidatePair.remote_addr, .protocol (checked in tests/test_media_taps.py).


def tap_receiver(receiver: RTCRtpReceiver, on_rtp: RtpHandler) -> None:
    """Route a receiver's decrypted RTP to ``on_rtp`` instead of its jitter buffer and decoder.

    RTCP receiver reports keep working: the statistics aiortc's RTCP task reads
    are fed here. RTX is unwrapped so the forwarder sees original sequence numbers.
    """
    codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _R + "codecs")
    rtx_ssrc: dict[int, int] = getattr(receiver, _R + "rtx_ssrc")
    streams: dict[int, StreamStatistics] = getattr(receiver, _R + "remote_streams")
    original_receive = receiver.receive

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = streams.get(packet.ssrc)
        if stats is None:
            stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        if is_rtx(codec):
            original_ssrc = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = codecs[apt]
        await on_rtp(packet, codec)

    async def receive(parameters: Any) -> None:
        await original_receive(parameters)
        # Forwarding never decodes: stop the decoder thread aiortc just started.
        getattr(receiver, _R + "stop_decoder")()

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver.receive = receive  # type: ignore[method-assign]


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    return getattr(receiver, _R + "decoder_thread") is not None


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    await receiver._send_rtcp_pli(media_ssrc)


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    await receiver._send_rtcp_nack(media_ssrc, lost)


def tap_sender(sender: RTCRtpSender, on_rtcp: RtcpHandler) -> None:
    """Give a sender's incoming RTCP (NACK, PLI, FIR, reports) to the forwarder first.

    aiortc's own handling is kept for receiver reports (round-trip time,
    stats); its NACK and PLI handling would act on an empty history and an
    encoder that forwarding never uses.
    """
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await on_rtcp(packet)
        await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def disable_sender_feedback(sender: RTCRtpSender) -> None:
    """Make aiortc's own retransmit and keyframe handling no-ops for a forwarding sender."""

    async def no_retransmit(sequence_number: int) -> None:
        return None

    sender._retransmit = no_retransmit  # type: ignore[method-assign]
    sender._send_keyframe = lambda: None  # type: ignore[method-assign]


class SenderBinding:
    """What a forwarder needs of a started sender to write RTP for it, fast.

    ``send`` protects and writes a datagram synchronously on the ICE-selected
    pair: the forwarding loop then costs no coroutine per packet and subscriber.
    """

    __slots__ = ("sender", "transport", "ssrc", "rtx_ssrc", "payload_type", "rtx_payload_type",
                 "extensions", "extension_ids", "mid", "_protect", "_nominated")

    def __init__(self, sender: RTCRtpSender, transceiver: RTCRtpTransceiver) -> None:
        self.sender = sender
        self.transport: RTCDtlsTransport = sender.transport
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.payload_type: int = transceiver._codecs[0].payloadType
        self.rtx_payload_type: int | None = getattr(sender, _S + "rtx_payload_type")
        self.extensions: HeaderExtensionsMap = getattr(sender, _S + "rtp_header_extensions_map")
        ids = self.extensions._HeaderExtensionsMap__ids
        # Packets serialised with the same extension ids are byte-identical but for PT, seq and SSRC.
        self.extension_ids = (ids.mid, ids.abs_send_time, ids.audio_level, ids.transmission_offset)
        self.mid: str | None = transceiver.mid
        self._protect = self.transport._tx_srtp.protect
        self._nominated: dict[int, Any] = self.transport.transport._connection._nominated

    def send(self, data: bytes) -> bool:
        """SRTP-protect and send one RTP packet; False once the transport is gone."""
        if self.transport._state is not DtlsState.CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        protocol = pair.protocol
        if type(protocol) is aioice.ice.StunProtocol:
            protocol.transport.sendto(self._protect(data), pair.remote_addr)
        else:  # a TURN allocation wraps data itself (the worker gathers none, but stay correct)
            asyncio.ensure_future(protocol.send_data(self._protect(data), pair.remote_addr))
        return True

    def record_sent(self, ntp_timestamp: int, rtp_timestamp: int, octets: int) -> None:
        """Keep the sender's RTCP sender reports truthful about what we forwarded."""
        sender = self.sender
        setattr(sender, _S + "ntp_timestamp", ntp_timestamp)
        setattr(sender, _S + "rtp_timestamp", rtp_timestamp)
        setattr(sender, _S + "packet_count", getattr(sender, _S + "packet_count") + 1)
        setattr(sender, _S + "octet_count", getattr(sender, _S + "octet_count") + octets)


def sender_last_rtp_timestamp(sender: RTCRtpSender) -> int:
    """The RTP timestamp of the last packet ``sender`` sent (0 before its first).

    aiortc adds a random origin, private to its send loop, to each frame's pts.
    Read between two frames, this gives that origin: the load harness uses it
    to match a captured frame to the RTP timestamp a subscriber receives.
    """
    return int(getattr(sender, _S + "rtp_timestamp"))


def transport_connected(transport: RTCDtlsTransport) -> bool:
    return transport._state is DtlsState.CONNECTED and transport._tx_srtp is not None


def on_sender_started(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` right after aiortc starts the sender (its transport is then connected)."""
    original_send = sender.send

    async def send(parameters: Any) -> None:
        await original_send(parameters)
        callback()

    sender.send = send  # type: ignore[method-assign]


def sender_started(sender: RTCRtpSender) -> bool:
    return bool(getattr(sender, _S + "started"))


def encoder_created(sender: RTCRtpSender) -> bool:
    return getattr(sender, _S + "encoder") is not None


def restrict_codecs(transceiver: RTCRtpTransceiver, primary: RTCRtpCodecParameters,
                    codecs: list[RTCRtpCodecParameters]) -> None:
    """Answer with only ``primary`` (and its RTX): preferences set after an offer is applied are ignored."""
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") == primary.payloadType]
    transceiver._codecs = [primary, *rtx[:1]]


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction of the remote offer's m-line, seen from our side ("recvonly": they send)."""
    return transceiver._offerDirection


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)


# Datagram interception -----------------------------------------------------------

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


def _install_datagram_patches() -> None:
    aioice.ice.StunProtocol.datagram_received = _datagram_received  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_stun = _send_stun  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_data = _send_data  # type: ignore[method-assign]


def _datagram_received(self: aioice.ice.StunProtocol, data: bytes, addr: tuple[Any, ...]) -> None:
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
    if DatagramGuard.enabled and data and data[0] > 3:  # STUN starts with two zero bits; DTLS, RTP never
        source = (addr[0], addr[1])
        connection = self.receiver
        pair = connection._nominated.get(self.local_candidate.component)
        if pair is not None:
            allowed = pair.remote_addr == source
        else:  # before nomination: only a peer we have a candidate pair with
            allowed = any(p.remote_addr == source for p in connection._check_list if p.protocol is self)
        if not allowed:
            DatagramGuard.dropped += 1
            return
    _original_datagram_received(self, data, addr)


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
_dtls_by_connection: weakref.WeakKeyDictionary[aioice.ice.Connection, RTCDtlsTransport] = weakref.WeakKeyDictionary()
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
    transport = _dtls_by_connection.get(connection)
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
        data = self._ssl.bio_read(1500)
    except SSL.Error:
        data = b""
    if data:
        if not self.encrypted:
            _dtls_by_connection[self.transport._connection] = self
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


# ICE host candidates ---------------------------------------------------------

_original_get_component_candidates = aioice.ice.Connection.get_component_candidates


def configure_host_candidates(interfaces: list[str], port_min: int = 0, port_max: int = 0) -> None:
    """Gather host candidates only on ``interfaces`` and, if given, inside a UDP port range.

    With no interfaces, aioice's default applies (every non-loopback address).
    """
    if interfaces:
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(interfaces)
    if not port_min:
        aioice.ice.Connection.get_component_candidates = _original_get_component_candidates
        return

    async def get_component_candidates(self: aioice.ice.Connection, component: int,
                                       addresses: list[str], timeout: int = 5) -> list[Any]:
        candidates = []
        for address in addresses:
            protocol = await _bind_in_range(self, address, port_min, port_max)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                component=component, transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=host, port=port, type="host",
            )
            self._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        # Server-reflexive and relayed candidates: aioice's own logic, no host sockets.
        return candidates + await _original_get_component_candidates(self, component, [], timeout)

    aioice.ice.Connection.get_component_candidates = get_component_candidates


class PortRangeExhausted(OSError):
    """Every UDP port of the configured media range is in use."""


async def _bind_in_range(connection: aioice.ice.Connection, address: str,
                         port_min: int, port_max: int) -> Any:
    loop = asyncio.get_running_loop()
    ports = list(range(port_min, port_max + 1))
    random.shuffle(ports)
    for port in ports:
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port))
        except OSError:
            continue
        sock = protocol.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        return protocol
    raise PortRangeExhausted(f"no free UDP port in {port_min}-{port_max} on {address}")
