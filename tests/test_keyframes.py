"""Keyframe detection on payloads from aiortc's real VP8 and H.264 encoders, and malformed ones."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from media.keyframes import is_h264_keyframe, is_keyframe, is_vp8_keyframe

CODECS = {
    "video/VP8": RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
    "video/H264": RTCRtpCodecParameters(
        mimeType="video/H264",
        clockRate=90000,
        payloadType=97,
        parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
    ),
}


def _encoded_frames(mime: str, count: int, force_at: int | None = None) -> list[list[bytes]]:
    encoder = get_encoder(CODECS[mime])
    frames = []
    for index in range(count):
        image = np.zeros((240, 320, 3), dtype=np.uint8)
        image[:, (index * 8) % 320 : (index * 8) % 320 + 8] = 255
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=(index == force_at))
        frames.append(payloads)
    return frames


@pytest.mark.parametrize("mime", list(CODECS))
def test_only_keyframes_are_detected(mime: str) -> None:
    frames = _encoded_frames(mime, 6, force_at=4)
    first_packets = [is_keyframe(mime, payloads[0]) for payloads in frames]
    assert first_packets == [True, False, False, False, True, False]
    # Continuation packets of a keyframe are not starts of one.
    for payloads in frames:
        assert not any(is_keyframe(mime, p) for p in payloads[1:])


def test_vp8_descriptor_variants() -> None:
    # S=1, PID=0, no extension, key frame (P bit clear).
    assert is_vp8_keyframe(bytes([0x10, 0x00]))
    # Extension with 15-bit picture ID, TL0PICIDX and TID: the payload header is at offset 6.
    assert is_vp8_keyframe(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]))
    assert not is_vp8_keyframe(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x01]))
    # Not the start of partition 0.
    assert not is_vp8_keyframe(bytes([0x00, 0x00]))
    assert not is_vp8_keyframe(bytes([0x11, 0x00]))


@pytest.mark.parametrize("payload", [b"", b"\x90", b"\x90\x80", b"\x90\xff\x80", b"\x10"])
def test_vp8_truncated_payloads_are_not_keyframes(payload: bytes) -> None:
    assert is_vp8_keyframe(payload) is False


def test_h264_packetisations() -> None:
    assert is_h264_keyframe(bytes([0x65, 0x88]))  # IDR slice
    assert is_h264_keyframe(bytes([0x67, 0x42]))  # SPS
    assert not is_h264_keyframe(bytes([0x41, 0x9A]))  # non-IDR slice
    assert is_h264_keyframe(bytes([0x7C, 0x85, 0x00]))  # FU-A start of an IDR
    assert not is_h264_keyframe(bytes([0x7C, 0x05, 0x00]))  # FU-A continuation
    stap = bytes([0x78, 0x00, 0x02, 0x09, 0xF0, 0x00, 0x02, 0x67, 0x42])  # AUD then SPS
    assert is_h264_keyframe(stap)


@pytest.mark.parametrize("payload", [b"", b"\x78", b"\x78\x00", b"\x78\x00\x00", b"\x78\xff\xff\x65", b"\x7c"])
def test_h264_malformed_payloads_are_not_keyframes(payload: bytes) -> None:
    assert is_h264_keyframe(payload) is False


def test_audio_needs_no_keyframe() -> None:
    assert is_keyframe("audio/opus", b"\x00")
