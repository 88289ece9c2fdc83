"""RTP and RTCP taps: decrypted RTP before aiortc's jitter buffer, raw sends, sender feedback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, cast

import aioice.ice
from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import AnyRtcpPacket, HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media.taps.srtp import OversizeRtp

RtpHandler = Callable[[RtpPacket, RTCRtpCodecParameters], Awaitable[None]]
SyncRtpHandler = Callable[[RtpPacket, RTCRtpCodecParameters], None]
RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[None]]

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"
_PC = "_RTCPeerConnection__"

PRIVATE_ATTRIBUTES = {
    RTCRtpReceiver: ("_handle_rtp_packet", "_send_rtcp_pli", "_send_rtcp_nack", "receive", "_enabled"),
    RTCRtpSender: ("_handle_rtcp_packet", "_ssrc", "_rtx_ssrc", "_retransmit", "_send_keyframe"),
    RTCDtlsTransport: (
        "_send_rtp",
        "_rx_srtp",
        "_tx_srtp",
        "_state",
        "_rtp_router",
        "_rtp_header_extensions_map",
        "_RTCDtlsTransport__rx_bytes",
        "_RTCDtlsTransport__rx_packets",
    ),
    RTCRtpTransceiver: ("_codecs", "_offerDirection"),
    HeaderExtensionsMap: ("_HeaderExtensionsMap__ids",),
    RTCPeerConnection: (
        "_RTCPeerConnection__dtlsTransports",
        "_RTCPeerConnection__iceTransports",
        "_RTCPeerConnection__remoteDescription",  # taps/bundle.py: the description aiortc parsed and applied
    ),
}
# aioice: Connection._nominated, ._check_list, ._protocols; StunProtocol.datagram_received,
# .local_candidate, .receiver; CandidatePair.remote_addr, .protocol (checked in tests/test_media_taps.py).


def tap_receiver(receiver: RTCRtpReceiver, on_rtp: RtpHandler) -> None:
    """Route a receiver's decrypted RTP to ``on_rtp`` instead of its jitter buffer and decoder.

    RTCP receiver reports keep working: the statistics aiortc's RTCP task reads
    are fed here. RTX is unwrapped so the forwarder sees original sequence numbers.
    """
    accept = _tapped_delivery(receiver)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        accepted = accept(packet)
        if accepted is not None:
            await on_rtp(*accepted)

    _install(receiver, handle_rtp_packet)


def tap_receiver_sync(receiver: RTCRtpReceiver, on_rtp: SyncRtpHandler) -> None:
    """``tap_receiver`` with a plain function, which a ``deliver_rtp_now`` transport calls from its socket callback."""
    accept = _tapped_delivery(receiver)

    def sink(packet: RtpPacket) -> None:
        accepted = accept(packet)
        if accepted is not None:
            on_rtp(*accepted)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        sink(packet)

    receiver._vitrine_rtp_sink = sink  # type: ignore[attr-defined]
    _install(receiver, handle_rtp_packet)


def _tapped_delivery(receiver: RTCRtpReceiver) -> Callable[[RtpPacket], tuple[RtpPacket, RTCRtpCodecParameters] | None]:
    codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _R + "codecs")
    rtx_ssrc: dict[int, int] = getattr(receiver, _R + "rtx_ssrc")
    streams: dict[int, StreamStatistics] = getattr(receiver, _R + "remote_streams")

    def accept(packet: RtpPacket) -> tuple[RtpPacket, RTCRtpCodecParameters] | None:
        if not receiver._enabled:
            return None
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return None
        stats = streams.get(packet.ssrc)
        if stats is None:
            stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        if is_rtx(codec):
            original_ssrc = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return None
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = codecs[apt]
        return packet, codec

    return accept


class _RtpPacketHandler(Protocol):
    """What stands in for ``RTCRtpReceiver._handle_rtp_packet`` (which is called with keywords too)."""

    def __call__(self, packet: RtpPacket, arrival_time_ms: int) -> Coroutine[Any, Any, None]: ...


def _install(receiver: RTCRtpReceiver, handle_rtp_packet: _RtpPacketHandler) -> None:
    original_receive = receiver.receive

    async def receive(parameters: Any) -> None:
        await original_receive(parameters)
        # Forwarding never decodes: stop the decoder thread aiortc just started.
        getattr(receiver, _R + "stop_decoder")()

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver.receive = receive  # type: ignore[method-assign]


async def stop_transports(pc: RTCPeerConnection) -> None:
    """Stop every DTLS and ICE transport ``pc`` still has, whatever fails: what its ``close()`` stops, for
    a connection whose ``close()`` raised half-way. aiortc can apply half a remote description (a BUNDLE
    group whose first mid is no m-line leaves a transceiver without a transport), and its ``close()`` then
    stops at that transceiver with the rest still open."""
    for dtls in list(getattr(pc, _PC + "dtlsTransports")):
        with contextlib.suppress(Exception):
            await dtls.stop()
    for ice in list(getattr(pc, _PC + "iceTransports")):
        with contextlib.suppress(Exception):
            await ice.stop()
    pc.remove_all_listeners()


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


def untap_sender(sender: RTCRtpSender) -> None:
    """Undo ``tap_sender`` and ``on_sender_started``: their wrappers hold the forwarder's subscriber state.

    A subscription removed from a connection that lives on leaves its sender there, on an inactive
    m-line; a wrapper left on it would keep the publisher's track, and through it the publisher's whole
    finished peer connection, alive as long as the subscriber stays.
    """
    for name in ("_handle_rtcp_packet", "send"):
        sender.__dict__.pop(name, None)


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

    __slots__ = (
        "sender",
        "transport",
        "ssrc",
        "rtx_ssrc",
        "payload_type",
        "rtx_payload_type",
        "extensions",
        "extension_ids",
        "mid",
        "_protect",
        "_nominated",
    )

    def __init__(self, sender: RTCRtpSender, transceiver: RTCRtpTransceiver) -> None:
        self.sender = sender
        self.transport: RTCDtlsTransport = sender.transport
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.payload_type: int = cast(int, transceiver._codecs[0].payloadType)  # negotiated: always numbered
        self.rtx_payload_type: int | None = getattr(sender, _S + "rtx_payload_type")
        self.extensions: HeaderExtensionsMap = getattr(sender, _S + "rtp_header_extensions_map")
        ids = self.extensions._HeaderExtensionsMap__ids
        # Packets serialised with the same extension ids are byte-identical but for PT, seq and SSRC.
        self.extension_ids = (ids.mid, ids.abs_send_time, ids.audio_level, ids.transmission_offset)
        self.mid: str | None = transceiver.mid
        self._protect = self.transport._tx_srtp.protect
        self._nominated: dict[int, Any] = self.transport.transport._connection._nominated

    def send(self, data: bytes) -> bool:
        """SRTP-protect and send one RTP packet; False once the transport is gone, or if the packet is too long
        to protect (counted in ``OversizeRtp``: the caller goes on to its other subscribers)."""
        if self.transport._state is not DtlsState.CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        try:
            protected = self._protect(data)
        except ValueError:  # pylibsrtp: "packet is too long"
            OversizeRtp.record(len(data))
            return False
        protocol = pair.protocol
        if type(protocol) is aioice.ice.StunProtocol:
            protocol.transport.sendto(protected, pair.remote_addr)
        else:  # a TURN allocation wraps data itself (the worker gathers none, but stay correct)
            asyncio.ensure_future(protocol.send_data(protected, pair.remote_addr))
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


def restrict_codecs(
    transceiver: RTCRtpTransceiver, primary: RTCRtpCodecParameters, codecs: list[RTCRtpCodecParameters]
) -> None:
    """Answer with only ``primary`` (and its RTX): preferences set after an offer is applied are ignored."""
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") == primary.payloadType]
    transceiver._codecs = [primary, *rtx[:1]]


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction of the remote offer's m-line, seen from our side ("recvonly": they send)."""
    return transceiver._offerDirection


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)
