"""The load harness's pre-encoded publisher source (loadtest/source.py), alone and in a real run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from loadtest import cli, source
from loadtest.source import PreEncodedAudioTrack, PreEncodedVideoTrack
from media.keyframes import is_vp8_keyframe
from tests.loadtest_helpers import RUN_TIMEOUT_S, harness

W, H, FPS, FRAMES = 160, 120, 30.0, 150


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests read packets as fast as they are made: no real-time pacing."""

    async def no_wait(self: Any) -> None:
        return None

    monkeypatch.setattr(source._Pacer, "wait", no_wait)


def first_payload_is_keyframe(packet: av.Packet) -> bool:
    payloads, _ = Vp8Encoder().pack(packet)
    return is_vp8_keyframe(payloads[0])


async def read(track: Any, count: int) -> list[av.Packet]:
    return [await track.recv() for _ in range(count)]


def test_the_loop_decodes_at_its_size_and_starts_on_a_keyframe() -> None:
    track = PreEncodedVideoTrack(W, H, FPS)
    packets = asyncio.run(read(track, 8))
    assert len(track.loop.frames) == FRAMES
    assert packets[0].is_keyframe and first_payload_is_keyframe(packets[0])
    assert not any(p.is_keyframe or first_payload_is_keyframe(p) for p in packets[1:])
    decoder = av.CodecContext.create("libvpx", "r")
    frames = [f for p in packets for f in decoder.decode(av.Packet(bytes(p)))]
    assert len(frames) == 8
    assert all((f.width, f.height) == (W, H) for f in frames)
    assert packets[1].time_base == source.VIDEO_TIME_BASE


def test_the_default_loop_has_a_realistic_bitrate() -> None:
    loop = source.video_loop()
    assert (loop.width, loop.height) == (640, 480)
    assert 250 <= loop.bitrate_kbps <= 700, loop.bitrate_kbps
    assert all(len(k) > 0 for k in loop.keyframes)
    assert source.video_loop() is loop  # one encoding per process and shape


def test_pts_increase_across_a_loop_wrap() -> None:
    track = PreEncodedVideoTrack(W, H, FPS)
    packets = asyncio.run(read(track, FRAMES + 10))
    pts = [p.pts for p in packets]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert pts[1] - pts[0] == 3000
    assert pts[FRAMES] == FRAMES * 3000
    assert packets[FRAMES].is_keyframe  # the loop restarts on its keyframe
    captured = [p for p, _ in track.clock._captures]
    assert captured == pts  # glass-to-glass: every packet's capture is keyed by its pts


def test_a_keyframe_request_makes_the_next_packet_a_keyframe_that_decodes_with_what_follows() -> None:
    track = PreEncodedVideoTrack(W, H, FPS)

    async def scenario() -> list[av.Packet]:
        before = await read(track, 20)
        track.request_keyframe()
        return before + await read(track, 10)

    packets = asyncio.run(scenario())
    assert packets[20].is_keyframe and first_payload_is_keyframe(packets[20])
    assert not packets[21].is_keyframe and not first_payload_is_keyframe(packets[21])
    decoder = av.CodecContext.create("libvpx", "r")  # a subscriber joining on the requested keyframe
    frames = [f for p in packets[20:] for f in decoder.decode(av.Packet(bytes(p)))]
    assert len(frames) == 10 and frames[0].width == W


class FakeSender:
    """What the track needs of an RTCRtpSender: its RTCP handler and the RTP timestamp it last sent."""

    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self.handled.append(packet)


@pytest.mark.parametrize("fmt", [RTCP_PSFB_PLI, RTCP_PSFB_FIR])
def test_a_pli_or_fir_on_the_sender_requests_a_keyframe(fmt: int, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = FakeSender()
    monkeypatch.setattr(source.taps, "sender_last_rtp_timestamp", lambda s: 0)
    track = PreEncodedVideoTrack(W, H, FPS, find_sender=lambda t: sender)

    async def scenario() -> list[av.Packet]:
        packets = await read(track, 5)
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=2))
        return packets + await read(track, 2)

    packets = asyncio.run(scenario())
    assert len(sender.handled) == 1  # aiortc's own handling still runs
    assert track.keyframe_requests == 1
    assert packets[5].is_keyframe and not packets[6].is_keyframe


def test_the_rtp_origin_is_learnt_from_the_sender() -> None:
    sender = FakeSender()
    origin = 0xFFFFF000  # wraps: captures are reported modulo 2^32
    track = PreEncodedVideoTrack(W, H, FPS, find_sender=lambda t: sender)

    async def scenario() -> None:
        for _ in range(6):
            packet = await track.recv()
            sender.__dict__["_RTCRtpSender__rtp_timestamp"] = (origin + packet.pts) & 0xFFFFFFFF

    asyncio.run(scenario())
    assert track.clock.offset == origin
    assert track.captures()[0][0] == origin


def test_audio_packets_are_20_ms_of_opus_with_increasing_pts() -> None:
    track = PreEncodedAudioTrack()
    packets = asyncio.run(read(track, len(track.loop.packets) + 5))
    assert [p.pts for p in packets[:3]] == [0, 960, 1920]
    assert all(b.pts - a.pts == 960 for a, b in zip(packets, packets[1:]))
    decoder = av.CodecContext.create("libopus", "r")
    samples = sum(f.samples for p in packets[:5] for f in decoder.decode(av.Packet(bytes(p))))
    assert samples == 5 * 960


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_consult_run_with_the_preencoded_source_delivers_frames(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path,
        "--scenario",
        "consult",
        "--pairs",
        "2",
        "--duration",
        "5",
        "--source",
        "preencoded",
        "--slo-join-p95",
        "100000",
    )
    assert code == cli.EXIT_OK, output[-4000:]
    assert report["config"]["source"] == "preencoded"
    assert report["summary"]["failures"]["count"] == 0, report["summary"]["failures"]
    media = report["summary"]["media"]
    assert media["subscribers"] == 4
    assert media["delivered_ratio"] > 0.9
    assert media["glass_to_glass_ms"]["n"] > 0
    assert media["audio"]["subscribers"] == 4
