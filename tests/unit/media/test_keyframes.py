"""media/keyframes.py, table-driven over hand-made payloads: the VP8 descriptor's optional fields one by one,
the H.264 packetizations of packetization-mode 1, and the dispatch on the codec.

tests/test_keyframes.py checks the same functions on real encoder output; these rows pin the byte-level cases.
"""

from __future__ import annotations

import pytest

from media.keyframes import is_h264_keyframe, is_keyframe, is_vp8_keyframe

# VP8 payload descriptor (RFC 7741 4.2): X R N S R PID | I L T K RSV | PictureID (7 or 15 bits) | TL0PICIDX |
# TID Y KEYIDX (one byte for T and K), then the VP8 payload header, whose lowest bit (P) is clear on a key frame.
VP8_CASES = [
    pytest.param(bytes([0x10, 0x00]), True, id="minimal-key"),
    pytest.param(bytes([0x10, 0x01]), False, id="minimal-delta"),
    pytest.param(bytes([0x30, 0x00]), True, id="non-reference-bit-ignored"),
    pytest.param(bytes([0x10, 0xFE]), True, id="only-the-P-bit-counts"),
    pytest.param(bytes([0x00, 0x00]), False, id="not-start-of-partition"),
    pytest.param(bytes([0x17, 0x00]), False, id="start-of-partition-7"),
    pytest.param(bytes([0x90, 0x00, 0x00]), True, id="X-without-optional-fields-key"),
    pytest.param(bytes([0x90, 0x00, 0x01]), False, id="X-without-optional-fields-delta"),
    pytest.param(bytes([0x90, 0x80, 0x05, 0x00]), True, id="7-bit-picture-id-key"),
    pytest.param(bytes([0x90, 0x80, 0x05, 0x01]), False, id="7-bit-picture-id-delta"),
    pytest.param(bytes([0x90, 0x80, 0x81, 0x23, 0x00]), True, id="15-bit-picture-id-key"),
    pytest.param(bytes([0x90, 0x80, 0x80, 0x01, 0x01]), False, id="15-bit-picture-id-delta"),
    pytest.param(bytes([0x90, 0x40, 0x01, 0x00]), True, id="TL0PICIDX-only"),
    pytest.param(bytes([0x90, 0x20, 0x41, 0x00]), True, id="TID-only"),
    pytest.param(bytes([0x90, 0x10, 0x01, 0x00]), True, id="KEYIDX-only-key"),
    pytest.param(bytes([0x90, 0x10, 0x00, 0x01]), False, id="KEYIDX-only-delta"),
    pytest.param(bytes([0x90, 0x30, 0x01, 0x00]), True, id="T-and-K-share-one-byte"),
    pytest.param(bytes([0x90, 0xF0, 0x05, 0x07, 0x01, 0x00]), True, id="every-field-7-bit-id"),
    pytest.param(bytes([0x90, 0xF0, 0x85, 0x01, 0x03, 0x01, 0x00]), True, id="every-field-15-bit-id-key"),
    pytest.param(bytes([0x90, 0xF0, 0x85, 0x01, 0x03, 0x00, 0x01]), False, id="every-field-15-bit-id-delta"),
    pytest.param(b"", False, id="empty"),
    pytest.param(bytes([0x90, 0x80, 0x80]), False, id="15-bit-picture-id-cut-short"),
    pytest.param(bytes([0x90, 0x80, 0x80, 0x01]), False, id="no-payload-header-after-15-bit-id"),
    pytest.param(bytes([0x90, 0x40, 0x01]), False, id="no-payload-header-after-TL0PICIDX"),
    pytest.param(bytes([0x90, 0x00]), False, id="no-payload-header-after-extension-byte"),
]


@pytest.mark.parametrize(("payload", "keyframe"), VP8_CASES)
def test_vp8(payload: bytes, keyframe: bool) -> None:
    assert is_vp8_keyframe(payload) is keyframe


# H.264 NAL unit header: F NRI(2) type(5). FU-A (28): indicator, then S E R type. STAP-A (24): 16-bit sizes.
AUD = bytes([0x09, 0xF0])
SLICE = bytes([0x41, 0x9A])
IDR = bytes([0x65, 0x88])
SPS = bytes([0x67, 0x42])
PPS = bytes([0x68, 0xCE])


def stap_a(*units: bytes) -> bytes:
    return bytes([0x78]) + b"".join(len(unit).to_bytes(2, "big") + unit for unit in units)


H264_CASES = [
    pytest.param(IDR, True, id="IDR"),
    pytest.param(SPS, True, id="SPS"),
    pytest.param(PPS, False, id="PPS-alone"),
    pytest.param(SLICE, False, id="non-IDR-slice"),
    pytest.param(bytes([0x06, 0x05]), False, id="SEI"),
    pytest.param(bytes([0x05]), True, id="IDR-with-NRI-0"),
    pytest.param(bytes([0x25, 0x88]), True, id="IDR-with-NRI-1"),
    pytest.param(bytes([0x7C, 0x85, 0x00]), True, id="FU-A-start-of-IDR"),
    pytest.param(bytes([0x7C, 0x87, 0x00]), True, id="FU-A-start-of-SPS"),
    pytest.param(bytes([0x7C, 0xC5, 0x00]), True, id="FU-A-start-and-end-of-IDR"),
    pytest.param(bytes([0x7C, 0x05, 0x00]), False, id="FU-A-middle-of-IDR"),
    pytest.param(bytes([0x7C, 0x45, 0x00]), False, id="FU-A-end-of-IDR"),
    pytest.param(bytes([0x7C, 0x81, 0x00]), False, id="FU-A-start-of-non-IDR"),
    pytest.param(bytes([0x7C]), False, id="FU-A-indicator-only"),
    pytest.param(stap_a(SPS, PPS), True, id="STAP-A-SPS-PPS"),
    pytest.param(stap_a(AUD, IDR), True, id="STAP-A-IDR-second"),
    pytest.param(stap_a(AUD, PPS, IDR), True, id="STAP-A-IDR-third"),
    pytest.param(stap_a(AUD, SLICE), False, id="STAP-A-without-keyframe-units"),
    pytest.param(stap_a(bytes([0x65])), True, id="STAP-A-one-byte-IDR"),
    pytest.param(stap_a(AUD) + bytes([0x00, 0x05, 0x65]), False, id="STAP-A-IDR-cut-short"),
    pytest.param(stap_a(AUD) + bytes([0x00, 0x00, 0x65]), False, id="STAP-A-zero-size-unit"),
    pytest.param(stap_a(AUD) + bytes([0x00]), False, id="STAP-A-trailing-byte"),
    pytest.param(bytes([0x7D, 0x85, 0x00, 0x00]), False, id="FU-B-not-in-mode-1"),
    pytest.param(bytes([0x79, 0x00, 0x00, 0x00, 0x02]) + IDR, False, id="STAP-B-not-in-mode-1"),
    pytest.param(b"", False, id="empty"),
]


@pytest.mark.parametrize(("payload", "keyframe"), H264_CASES)
def test_h264(payload: bytes, keyframe: bool) -> None:
    assert is_h264_keyframe(payload) is keyframe


@pytest.mark.parametrize(
    ("mime", "payload", "keyframe"),
    [
        pytest.param("video/VP8", bytes([0x10, 0x00]), True, id="vp8-key"),
        pytest.param("video/vp8", bytes([0x10, 0x01]), False, id="vp8-delta-lower-case"),
        pytest.param("VIDEO/VP8", bytes([0x10, 0x00]), True, id="vp8-upper-case"),
        pytest.param("video/H264", IDR, True, id="h264-idr"),
        pytest.param("video/h264", SLICE, False, id="h264-slice-lower-case"),
        pytest.param("video/H264", bytes([0x10, 0x00]), False, id="vp8-key-bytes-read-as-h264"),
        pytest.param("video/VP8", IDR, False, id="h264-idr-bytes-read-as-vp8"),
        pytest.param("audio/opus", b"", True, id="audio-needs-no-keyframe"),
        pytest.param("video/VP9", bytes([0x00]), True, id="unknown-codec-starts-anywhere"),
    ],
)
def test_is_keyframe_dispatches_on_the_codec(mime: str, payload: bytes, keyframe: bool) -> None:
    assert is_keyframe(mime, payload) is keyframe
