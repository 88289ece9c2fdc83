"""The aiortc/aioice private API the forwarder depends on. An upgrade that moves any of it fails here."""

from __future__ import annotations

import asyncio
import random

import aioice.ice
import aiortc
import aiortc.rate
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import taps
from media.forwarder import SilentTrack
from media.taps import datagrams, lean
from tests.media_helpers import MovingPatternTrack

RECEIVER_PRIVATE = ["codecs", "rtx_ssrc", "remote_streams", "stop_decoder", "decoder_thread"]
SENDER_PRIVATE = [
    "rtx_payload_type",
    "rtp_header_extensions_map",
    "started",
    "encoder",
    "ntp_timestamp",
    "rtp_timestamp",
    "packet_count",
    "octet_count",
    "mid",
]


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__.startswith("1.16."), "media/taps/ was written against aiortc 1.16"


async def test_private_attributes_exist() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        transceiver = pc.addTransceiver(SilentTrack("video", "TR_x"), direction="sendonly")
        receiver, sender = transceiver.receiver, transceiver.sender
        for name in RECEIVER_PRIVATE:
            assert hasattr(receiver, f"_RTCRtpReceiver__{name}"), name
        for name in SENDER_PRIVATE:
            assert hasattr(sender, f"_RTCRtpSender__{name}"), name
        extensions = sender._RTCRtpSender__rtp_header_extensions_map
        for cls, names in taps.PRIVATE_ATTRIBUTES.items():
            instance = {
                type(receiver): receiver,
                type(sender): sender,
                type(transceiver): transceiver,
                type(pc): pc,
                type(receiver.transport): receiver.transport,
                type(extensions): extensions,
            }[cls]
            for name in names:
                assert hasattr(instance, name), f"{cls.__name__}.{name}"
        connection = receiver.transport.transport._connection
        for name in ("_nominated", "_check_list", "_protocols"):
            assert hasattr(connection, name), f"aioice Connection.{name}"
        assert callable(aioice.ice.get_host_addresses)
        assert hasattr(aioice.ice.Connection, "get_component_candidates")
        assert hasattr(aioice.ice.StunProtocol, "datagram_received")
        assert hasattr(aioice.ice.CandidatePair, "remote_addr")
        ids = extensions._HeaderExtensionsMap__ids
        for name in ("mid", "abs_send_time", "audio_level", "transmission_offset"):
            assert hasattr(ids, name)
    finally:
        await pc.close()


async def test_tapped_receiver_sees_rtp_and_never_decodes() -> None:
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    seen: list[int] = []
    enough = asyncio.Event()

    async def on_rtp(packet, codec) -> None:
        seen.append(packet.sequence_number)
        assert codec.mimeType.lower() == "video/vp8"
        if len(seen) >= 30:
            enough.set()

    try:
        sender_pc.addTransceiver(MovingPatternTrack(), direction="sendonly")
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        receiver = receiver_pc.getTransceivers()[0].receiver
        taps.tap_receiver(receiver, on_rtp)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await asyncio.wait_for(enough.wait(), 30)
        assert not taps.decoder_running(receiver)
        stats = await receiver.getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsReceived >= 30  # receiver reports still fed
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_host_candidates_respect_interfaces_and_port_range() -> None:
    taps.configure_host_candidates(["127.0.0.1"], 40100, 40120)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [line.split() for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates
        for bits in candidates:
            assert bits[4] == "127.0.0.1"
            assert 40100 <= int(bits[5]) <= 40120
    finally:
        await pc.close()
        taps.configure_host_candidates(["127.0.0.1"])


async def test_port_range_exhaustion_is_an_error() -> None:
    taps.configure_host_candidates(["127.0.0.1"], 40130, 40130)
    first = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    second = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        first.addTransceiver("audio", direction="recvonly")
        await first.setLocalDescription(await first.createOffer())
        second.addTransceiver("audio", direction="recvonly")
        with pytest.raises(OSError, match="no free UDP port"):
            await second.setLocalDescription(await second.createOffer())
    finally:
        await first.close()
        await second.close()
        taps.configure_host_candidates(["127.0.0.1"])


async def _connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection]:
    taps.HandshakeAccelerator.install()
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    a.addTransceiver(MovingPatternTrack(), direction="sendonly")
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    for _ in range(600):
        if a.connectionState == b.connectionState == "connected":
            return a, b
        await asyncio.sleep(0.05)
    raise AssertionError("the pair did not connect")


async def test_repeated_handshake_datagrams_are_answered_once_and_not_forever() -> None:
    a, b = await _connected_pair()
    try:
        transport = b.getTransceivers()[0].receiver.transport
        connection = transport.transport._connection
        repeat = b"\x16\xfe\xfd" + bytes(20)  # a handshake record the peer "sends twice"
        datagrams._note_handshake_datagram(connection, repeat)
        before = taps.HandshakeAccelerator.dtls_flights_resent
        transport._vitrine_answered_at = 0.0
        datagrams._note_handshake_datagram(connection, repeat)  # a repeat: our last flight goes again
        answered = taps.HandshakeAccelerator.dtls_flights_resent
        assert answered > before
        datagrams._note_handshake_datagram(connection, repeat)  # again at once: rate-limited
        assert taps.HandshakeAccelerator.dtls_flights_resent == answered
        transport._vitrine_answered_at = 0.0
        transport._vitrine_finished_at -= datagrams.DUPLICATE_ANSWER_WINDOW_S + 1  # long after the handshake
        datagrams._note_handshake_datagram(connection, repeat)
        assert taps.HandshakeAccelerator.dtls_flights_resent == answered
    finally:
        await a.close()
        await b.close()


def test_window_rate_counter_matches_aiortcs_bucket_counter() -> None:
    """The replacement gives aiortc's results on the same samples, gaps and window exits included."""
    rng = random.Random(7)
    ours, theirs = lean.WindowRateCounter(1000, 8000), lean._aiortc_rate_counter(1000, 8000)
    now = 10_000
    for step in range(5000):
        now += rng.choice((0, 1, 3, 20, 33, 400, 1500)) if step % 97 else 2500
        if rng.random() < 0.8:
            size = rng.randint(50, 1300)
            ours.add(size, now)
            theirs.add(size, now)
        assert ours.rate(now) == theirs.rate(now)
        if step == 2500:
            ours.reset()
            theirs.reset()


def test_lean_clock_reads_the_same_time_as_aiortcs() -> None:
    before = lean._aiortc_current_ms()
    ms = lean.current_ms()
    after = lean._aiortc_current_ms()
    assert before <= ms <= after
    ntp_before = lean._aiortc_current_ntp_time()
    ntp = lean.current_ntp_time()
    ntp_after = lean._aiortc_current_ntp_time()
    assert ntp_before <= ntp <= ntp_after + (1 << 32) // 1_000_000  # same microsecond resolution


async def test_peer_connections_share_one_certificate_once_lean() -> None:
    taps.LeanAiortc.install()
    generated = taps.LeanAiortc.certificates_generated
    first = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    second = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    assert taps.LeanAiortc.certificates_generated - generated <= 1  # the first may (re)generate it, never both
    try:
        first.addTransceiver("video")
        second.addTransceiver("video")
        await first.setLocalDescription(await first.createOffer())
        await second.setLocalDescription(await second.createOffer())
        fingerprint = [line for line in first.localDescription.sdp.splitlines() if line.startswith("a=fingerprint")]
        assert fingerprint and fingerprint == [
            line for line in second.localDescription.sdp.splitlines() if line.startswith("a=fingerprint")
        ]
        assert aiortc.rate.RateCounter is lean.WindowRateCounter
    finally:
        await first.close()
        await second.close()


async def _fast_path_pair(on_rtp) -> tuple[RTCPeerConnection, RTCPeerConnection, object]:
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender_pc.addTransceiver(MovingPatternTrack(), direction="sendonly")
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    await receiver_pc.setRemoteDescription(sender_pc.localDescription)
    receiver = receiver_pc.getTransceivers()[0].receiver
    taps.tap_receiver_sync(receiver, on_rtp)
    taps.deliver_rtp_now(receiver.transport)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    return sender_pc, receiver_pc, receiver


async def test_fast_path_delivers_srtp_from_the_socket_callback() -> None:
    seen: list[int] = []
    enough = asyncio.Event()
    delivered_before = taps.FastPathCounters.delivered

    def on_rtp(packet, codec) -> None:
        seen.append(packet.sequence_number)
        assert codec.mimeType.lower() == "video/vp8"
        if len(seen) >= 30:
            enough.set()

    sender_pc, receiver_pc, receiver = await _fast_path_pair(on_rtp)
    try:
        await asyncio.wait_for(enough.wait(), 30)
        assert taps.FastPathCounters.delivered - delivered_before >= 25  # a few may precede DTLS "connected"
        assert not taps.decoder_running(receiver)
        inbound = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsReceived >= 30  # receiver reports still fed
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_a_failing_handler_on_the_fast_path_does_not_stop_delivery() -> None:
    calls = 0
    enough = asyncio.Event()
    errors_before = taps.FastPathCounters.handler_errors

    def on_rtp(packet, codec) -> None:
        nonlocal calls
        calls += 1
        if calls >= 20:
            enough.set()
        if calls % 2:
            raise RuntimeError("a forwarding bug")

    sender_pc, receiver_pc, _ = await _fast_path_pair(on_rtp)
    try:
        await asyncio.wait_for(enough.wait(), 30)
        assert taps.FastPathCounters.handler_errors - errors_before >= 5
    finally:
        await sender_pc.close()
        await receiver_pc.close()
