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
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import AnyRtcpPacket, HeaderExtensionsMap, RtpPacket, unwrap_rtx

RtpHandler = Callable[[RtpPacket, RTCRtpCodecParameters], Awaitable[None]]
RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[None]]

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"

PRIVATE_ATTRIBUTES = {
    RTCRtpReceiver: ("_handle_rtp_packet", "_send_rtcp_pli", "_send_rtcp_nack", "receive"),
    RTCRtpSender: ("_handle_rtcp_packet", "_ssrc", "_rtx_ssrc"),
    RTCDtlsTransport: ("_send_rtp", "_rx_srtp", "_tx_srtp"),
    RTCRtpTransceiver: ("_codecs",),
}


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
    """What a forwarder needs of a started sender to write RTP for it."""

    __slots__ = ("sender", "transport", "ssrc", "rtx_ssrc", "payload_type", "rtx_payload_type",
                 "extensions", "mid")

    def __init__(self, sender: RTCRtpSender, transceiver: RTCRtpTransceiver) -> None:
        self.sender = sender
        self.transport: RTCDtlsTransport = sender.transport
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.payload_type: int = transceiver._codecs[0].payloadType
        self.rtx_payload_type: int | None = getattr(sender, _S + "rtx_payload_type")
        self.extensions: HeaderExtensionsMap = getattr(sender, _S + "rtp_header_extensions_map")
        self.mid: str | None = transceiver.mid

    def record_sent(self, ntp_timestamp: int, rtp_timestamp: int, octets: int) -> None:
        """Keep the sender's RTCP sender reports truthful about what we forwarded."""
        sender = self.sender
        setattr(sender, _S + "ntp_timestamp", ntp_timestamp)
        setattr(sender, _S + "rtp_timestamp", rtp_timestamp)
        setattr(sender, _S + "packet_count", getattr(sender, _S + "packet_count") + 1)
        setattr(sender, _S + "octet_count", getattr(sender, _S + "octet_count") + octets)


def sender_started(sender: RTCRtpSender) -> bool:
    return bool(getattr(sender, _S + "started"))


def encoder_created(sender: RTCRtpSender) -> bool:
    return getattr(sender, _S + "encoder") is not None


def restrict_codecs(transceiver: RTCRtpTransceiver, primary: RTCRtpCodecParameters,
                    codecs: list[RTCRtpCodecParameters]) -> None:
    """Answer with only ``primary`` (and its RTX): preferences set after an offer is applied are ignored."""
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") == primary.payloadType]
    transceiver._codecs = [primary, *rtx[:1]]


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)


async def send_rtp(transport: RTCDtlsTransport, data: bytes) -> None:
    await transport._send_rtp(data)


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
    raise OSError(f"no free UDP port in {port_min}-{port_max} on {address}")
