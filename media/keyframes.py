"""Spot keyframes in RTP payloads without decoding, so a subscriber starts on one."""

from __future__ import annotations

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def is_vp8_keyframe(payload: bytes) -> bool:
    """True for the first packet of a VP8 key frame (RFC 7741 section 4)."""
    if not payload:
        return False
    first = payload[0]
    start_of_partition = first & 0x10
    partition_index = first & 0x07
    if not start_of_partition or partition_index != 0:
        return False
    offset = 1
    if first & 0x80:  # X: extension byte present
        if len(payload) < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture ID, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    if len(payload) <= offset:
        return False
    return payload[offset] & 0x01 == 0  # P bit clear: key frame


def is_h264_keyframe(payload: bytes) -> bool:
    """True when the packet carries an IDR slice or an SPS (RFC 6184)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (H264_IDR, H264_SPS)
    if nal_type == H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            size = int.from_bytes(payload[offset : offset + 2], "big")
            offset += 2
            if size == 0 or offset + size > len(payload):
                return False
            if payload[offset] & 0x1F in (H264_IDR, H264_SPS):
                return True
            offset += size
    return False


def is_keyframe(codec_mime: str, payload: bytes) -> bool:
    mime = codec_mime.lower()
    if mime == "video/vp8":
        return is_vp8_keyframe(payload)
    if mime == "video/h264":
        return is_h264_keyframe(payload)
    return True  # audio and unknown codecs need no keyframe to start
