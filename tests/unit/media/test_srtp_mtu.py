"""RTP up to a full 1500-byte MTU is protected and forwarded (media/taps/srtp.py); longer is counted, not raised.

pylibsrtp's own session refuses RTP over 1356 bytes, and GStreamer packetizes at 1400. The last two tests send
through a real aiortc pair over loopback: the forwarder's send path (``SenderBinding.send``) on one side, the
fast path's receive tap on the other.
"""

from __future__ import annotations

import asyncio
import os
import time

import pylibsrtp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RtpPacket

from media import taps
from media.forwarder import SilentTrack
from media.taps.srtp import MAX_PROTECTED_RTP_BYTES, WideSession

DEADLINE_S = 30.0
KEY = os.urandom(30)  # AES128_CM_SHA1_80: a 16-byte key and a 14-byte salt
# RTP as large as one 1500-byte IPv4 datagram carries: 1500 - 20 (IP) - 8 (UDP) - 10 (SRTP's tag).
FULL_MTU_RTP_BYTES = 1462


def rtp(size: int, seq: int = 1, ssrc: int = 1234, payload_type: int = 96) -> bytes:
    header = RtpPacket(payload_type=payload_type, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc).serialize()
    return header + bytes((seq + i) & 0xFF for i in range(size - len(header)))


def sessions(session_type: type[pylibsrtp.Session]) -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = session_type(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = session_type(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def test_pylibsrtps_own_session_refuses_what_gstreamer_sends() -> None:
    tx, _ = sessions(pylibsrtp.Session)
    tx.protect(rtp(1356))
    with pytest.raises(ValueError, match="too long"):
        tx.protect(rtp(1400, seq=2))


@pytest.mark.parametrize("size", [1200, 1357, 1400, FULL_MTU_RTP_BYTES, MAX_PROTECTED_RTP_BYTES])
def test_a_wide_session_round_trips_rtp_up_to_its_limit(size: int) -> None:
    tx, rx = sessions(WideSession)
    packet = rtp(size)
    protected = tx.protect(packet)
    assert len(protected) == size + 10  # the 80-bit tag
    assert rx.unprotect(protected) == packet


def test_a_wide_session_still_refuses_more_than_its_limit() -> None:
    tx, _ = sessions(WideSession)
    with pytest.raises(ValueError, match="too long"):
        tx.protect(rtp(MAX_PROTECTED_RTP_BYTES + 1))
    assert MAX_PROTECTED_RTP_BYTES >= FULL_MTU_RTP_BYTES + 16  # room for the forwarder's extensions and RTX


def test_aiortc_builds_its_srtp_sessions_wide() -> None:
    import aiortc.rtcdtlstransport

    assert aiortc.rtcdtlstransport.Session is WideSession


async def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _forwarding_pair(
    arrived: list[RtpPacket],
) -> tuple[RTCPeerConnection, RTCPeerConnection, taps.SenderBinding]:
    """A worker-like sender (a silent track, the forwarder's binding) and a receiver tapped on the fast path."""
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sender_pc, receiver_pc = RTCPeerConnection(config), RTCPeerConnection(config)
    transceiver = sender_pc.addTransceiver(SilentTrack("video", "TR_mtu"), direction="sendonly")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"])
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    await receiver_pc.setRemoteDescription(sender_pc.localDescription)
    receiver = receiver_pc.getTransceivers()[0].receiver
    taps.tap_receiver_sync(receiver, lambda packet, codec: arrived.append(packet))
    taps.deliver_rtp_now(receiver.transport)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    sender = transceiver.sender
    await _wait(
        lambda: taps.sender_started(sender) and taps.transport_connected(sender.transport), "the sender to start"
    )
    return sender_pc, receiver_pc, taps.SenderBinding(sender, transceiver)


async def test_the_forwarders_send_path_delivers_full_mtu_rtp() -> None:
    arrived: list[RtpPacket] = []
    sender_pc, receiver_pc, binding = await _forwarding_pair(arrived)
    try:
        sizes = {100: 1200, 101: 1400, 102: FULL_MTU_RTP_BYTES}
        for seq, size in sizes.items():
            sent = rtp(size, seq=seq, ssrc=binding.ssrc, payload_type=binding.payload_type)
            assert binding.send(sent)
        await _wait(lambda: {p.sequence_number for p in arrived} >= set(sizes), "every packet to arrive")
        for packet in arrived:
            if packet.sequence_number in sizes:
                expected = rtp(sizes[packet.sequence_number], seq=packet.sequence_number)
                assert packet.payload == expected[12:]
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_a_packet_too_long_even_so_is_counted_and_the_next_one_still_goes() -> None:
    arrived: list[RtpPacket] = []
    sender_pc, receiver_pc, binding = await _forwarding_pair(arrived)
    try:
        dropped_before = taps.OversizeRtp.dropped
        too_long = rtp(MAX_PROTECTED_RTP_BYTES + 1, seq=200, ssrc=binding.ssrc, payload_type=binding.payload_type)
        assert binding.send(too_long) is False
        assert taps.OversizeRtp.dropped == dropped_before + 1
        assert binding.send(rtp(1400, seq=201, ssrc=binding.ssrc, payload_type=binding.payload_type))
        await _wait(lambda: any(p.sequence_number == 201 for p in arrived), "the packet after the long one")
        assert not any(p.sequence_number == 200 for p in arrived)
    finally:
        await sender_pc.close()
        await receiver_pc.close()
