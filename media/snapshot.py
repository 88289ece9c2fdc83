"""A still of a participant's live video, decoded on the worker: the fallback when the phone takes no photos.

Forwarding never decodes. A snapshot asks the publisher for a keyframe (the UpTrack's rate-limited PLI,
repeated while none comes), catches the next complete one on ``UpTrack.sinks`` as the recorder does,
and decodes that one frame with PyAV in a thread, into a JPEG (PyAV's ``mjpeg`` encoder). aiortc's own
decoders stay stopped, so ``media_stats()`` still reports none running.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.forwarder import UpTrack, seq_newer
from vitrine.core.errors import ErrorCode, VitrineError

SNAPSHOT_TIMEOUT_S = 5.0
KEYFRAME_RETRY_S = 0.5  # a lost PLI, or one the rate limit swallowed, is asked again
MAX_FRAME_PACKETS = 2048  # a keyframe larger than this is not waited for (a 4K keyframe is a few hundred)
DECODERS: dict[str, Literal["vp8", "h264"]] = {"video/vp8": "vp8", "video/h264": "h264"}
JPEG_QUALITY = 2  # mjpeg's qscale, 2 (best) to 31: evidence is worth the bytes


@dataclass
class Still:
    jpeg: bytes
    width: int
    height: int


class KeyframeCatcher:
    """A packet sink that keeps the packets of the first complete keyframe it sees, then resolves ``done``.

    A keyframe's packets share its RTP timestamp; it is complete when every sequence number from its first
    keyframe packet to the one with the marker bit has arrived (retransmissions included). A newer keyframe
    replaces an incomplete one.
    """

    def __init__(self) -> None:
        self.done: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._timestamp: int | None = None
        self._payloads: dict[int, bytes] = {}
        self._first: int | None = None
        self._last: int | None = None

    def __call__(self, packet: RtpPacket, keyframe: bool) -> None:
        if self.done.done():
            return
        seq = packet.sequence_number
        if keyframe and packet.timestamp != self._timestamp:
            self._timestamp, self._payloads, self._first, self._last = packet.timestamp, {}, seq, None
        elif packet.timestamp != self._timestamp or len(self._payloads) >= MAX_FRAME_PACKETS:
            return
        self._payloads[seq] = packet.payload
        if keyframe and self._first is not None and seq_newer(self._first, seq):
            self._first = seq  # H.264: SPS, PPS and IDR packets all count; the frame starts at the earliest
        if packet.marker:
            self._last = seq
        self._complete()

    def _complete(self) -> None:
        if self._first is None or self._last is None:
            return
        count = ((self._last - self._first) & 0xFFFF) + 1
        seqs = [(self._first + offset) & 0xFFFF for offset in range(count)]
        if count <= len(self._payloads) and all(seq in self._payloads for seq in seqs):
            self.done.set_result([self._payloads[seq] for seq in seqs])


async def take_snapshot(up: UpTrack, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> Still:
    """The next keyframe of ``up``, decoded and encoded as a JPEG; ``track_not_found`` if none comes in time."""
    mime = up.codec.mimeType.lower()
    if not up.is_video or mime not in DECODERS:
        raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "the participant publishes no video the worker can decode")
    catcher = KeyframeCatcher()
    up.sinks.append(catcher)
    try:
        async with asyncio.timeout(timeout_s):
            while not catcher.done.done():
                up.request_keyframe()
                await asyncio.wait({catcher.done}, timeout=KEYFRAME_RETRY_S)
    except TimeoutError:
        raise VitrineError(
            ErrorCode.TRACK_NOT_FOUND, f"no video frame arrived in {timeout_s:g} s (is the camera paused?)"
        ) from None
    finally:
        if catcher in up.sinks:
            up.sinks.remove(catcher)
    return await asyncio.to_thread(decode_jpeg, up.codec, catcher.done.result())


def decode_jpeg(codec: RTCRtpCodecParameters, payloads: list[bytes]) -> Still:
    """Depayload and decode one keyframe, and encode it as a JPEG (blocking: run it in a thread)."""
    try:
        data = b"".join(depayload(codec, payload) for payload in payloads)
        decoder = av.CodecContext.create(DECODERS[codec.mimeType.lower()], "r")
        frames = decoder.decode(av.Packet(data)) + decoder.decode(None)  # the flush: H.264 may hold it back
        if not frames:
            raise VitrineError(ErrorCode.INTERNAL, "the keyframe did not decode")
        frame = frames[0]
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
        encoder.time_base = Fraction(1, 1)
        encoder.qmin = encoder.qmax = JPEG_QUALITY
        packets = encoder.encode(frame.reformat(format="yuvj420p")) + encoder.encode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise VitrineError(ErrorCode.INTERNAL, f"the frame could not be converted ({type(exc).__name__})") from None
    return Still(jpeg=b"".join(bytes(packet) for packet in packets), width=frame.width, height=frame.height)
