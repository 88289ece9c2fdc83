"""Pre-encoded publisher media for the load harness: a publisher costs packetizing, not encoding.

Each worker process encodes, once, a loop of synthetic VP8 frames (a moving
checkerboard with a sweeping bar and a noise block; about 400 kbit/s at
640x480 and 30 fps) plus a keyframe version of every frame, and one second of
a quiet Opus tone. Every publisher of the process replays these packets:
aiortc's ``RTCRtpSender`` then only packetizes them (``Vp8Encoder.pack``,
``OpusEncoder.pack``), with no encoder running.

* Video starts on a keyframe; the loop's first frame is a keyframe, so a
  keyframe also goes out at every loop wrap (every 5 s with the defaults).
* ``request_keyframe()`` (PLI or FIR from the server: the track taps its own
  sender) makes the next packet the keyframe version of the next frame. The
  delta frames after it were encoded against the original frame, so the
  picture drifts a little until the next wrap: fine for load, not for looks.
* pts increase monotonically across loop wraps (90 kHz for video, 48 kHz for
  audio), and packets are paced in real time.
* Like the live pattern track, the video track records when each frame was
  sent (``time.monotonic()``) by pts, and learns the RTP timestamp origin of
  its sender, so subscribers' glass-to-glass latency can be matched.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from media import taps

VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_PTIME_S = 0.02
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME_S)  # 960 per 20 ms packet
DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0
DEFAULT_LOOP_FRAMES = 150  # 5 s at 30 fps
DEFAULT_BITRATE = 400_000  # the encoder's target; the content is busy enough to use it
KEYFRAME_BITRATE_FACTOR = 4  # keyframes get the budget of this many frames: several times a delta frame
AUDIO_LOOP_S = 1.0
AUDIO_TONE_HZ = 440.0
AUDIO_TONE_AMPLITUDE = 0.02  # about -34 dBFS: quiet, but not silence (Opus would squeeze silence to DTX-like size)
MAX_CAPTURES = 4500  # 150 s at 30 fps: covers the frames subscribers keep (quality.MAX_G2G_SAMPLES)
PTS_SLACK_TICKS = 3


# -- the encoded loops (one per process and shape) --------------------------------------------


@dataclass(frozen=True)
class VideoLoop:
    width: int
    height: int
    fps: float
    frames: tuple[bytes, ...]  # the loop as a stream: frames[0] is a keyframe, the rest delta frames
    keyframes: tuple[bytes, ...]  # keyframes[i]: frame i encoded on its own
    encode_s: float

    @property
    def bitrate_kbps(self) -> float:
        """The loop's average bitrate (VP8 payload, no RTP overhead)."""
        return sum(map(len, self.frames)) * 8 * self.fps / len(self.frames) / 1000


@dataclass(frozen=True)
class AudioLoop:
    packets: tuple[bytes, ...]  # 20 ms Opus packets, 48 kHz

    @property
    def bitrate_kbps(self) -> float:
        return sum(map(len, self.packets)) * 8 / (len(self.packets) * AUDIO_PTIME_S) / 1000


_VIDEO_LOOPS: dict[tuple[int, int, float, int, int], VideoLoop] = {}
_AUDIO_LOOP: list[AudioLoop] = []


def fill_plane(plane: av.video.plane.VideoPlane, data: bytes, row_bytes: int) -> None:
    """Copy ``data`` (rows of ``row_bytes`` each, back to back) into ``plane``, whose rows may be padded."""
    pad = plane.line_size - row_bytes
    if pad:
        data = b"".join(
            data[row : row + row_bytes] + bytes(pad) for row in range(0, plane.height * row_bytes, row_bytes)
        )
    plane.update(data)


def bar_frame(width: int, height: int, x: int, bar: int = 16) -> av.VideoFrame:
    """An RGB frame, black but for a white vertical bar ``bar`` pixels wide from column ``x`` (cut at the edge)."""
    row = bytearray(3 * width)
    end = min(x + bar, width)
    if end > x:
        row[3 * x : 3 * end] = b"\xff" * (3 * (end - x))
    frame = av.VideoFrame(width, height, "rgb24")
    plane = frame.planes[0]
    padded = bytes(row) + bytes(plane.line_size - 3 * width)
    plane.update(padded * height)
    return frame


NOISE = bytes(96 + b % 64 for b in range(256))  # a random byte to a luma value in 96..159, uniformly


def _pattern(width: int, height: int, frames: int) -> list[av.VideoFrame]:
    """YUV 4:2:0 frames: a scrolling checkerboard, a sweeping bar, a block of noise, a drifting chroma wave."""
    rng = random.Random(1)
    cell = max(8, width // 20)
    bar = max(4, width // 26)
    nh, nw = max(8, height // 7) & ~1, max(8, width // 10) & ~1
    top, left = (height - nh) // 2, (width - nw) // 2
    chroma_size = height // 2 * width  # U then V, each (height/2 x width/2), stored back to back
    out = []
    for i in range(frames):
        bx = (i * 6) % max(1, width - bar)
        bar_end = min(bx + bar, width)
        rows = []
        for parity in (0, 1):
            row = bytearray(((x + 2 * i) // cell + parity) % 2 * 80 + 80 for x in range(width))
            row[bx:bar_end] = b"\xeb" * (bar_end - bx)
            rows.append(bytes(row))
        luma = bytearray(b"".join(rows[(y // cell) % 2] for y in range(height)))
        noise = rng.randbytes(nh * nw).translate(NOISE)
        for r in range(nh):
            start = (top + r) * width + left
            luma[start : start + nw] = noise[r * nw : (r + 1) * nw]
        wave = bytes(int(128 + 40 * math.sin((x + 2 * i) / 80)) for x in range(width))
        chroma = wave * (height // 4) + b"\x80" * (chroma_size - width * (height // 4))
        frame = av.VideoFrame(width, height, "yuv420p")
        fill_plane(frame.planes[0], bytes(luma), width)
        fill_plane(frame.planes[1], chroma[: chroma_size // 2], width // 2)
        fill_plane(frame.planes[2], chroma[chroma_size // 2 :], width // 2)
        out.append(frame)
    return out


def _vp8_encoder(width: int, height: int, fps: float, bitrate: int, gop: int) -> Any:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, round(fps))
    codec.framerate = Fraction(round(fps))
    codec.bit_rate = bitrate
    codec.gop_size = gop
    codec.qmin, codec.qmax = 4, 63
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "bufsize": str(bitrate),
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "undershoot-pct": "100",
        "overshoot-pct": "15",
        "static-thresh": "1",
    }
    return codec


def _encode(codec: Any, frames: list[av.VideoFrame], keyframes: bool) -> list[bytes]:
    out: list[bytes] = []
    for i, frame in enumerate(frames):
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.I if keyframes else av.video.frame.PictureType.NONE
        packets = codec.encode(frame)
        out.append(b"".join(bytes(p) for p in packets))
    tail = codec.encode(None)
    if tail:  # lag-in-frames 0: nothing is held back, but be safe
        raise RuntimeError("the VP8 encoder held frames back")
    if any(not data for data in out):
        raise RuntimeError("the VP8 encoder dropped a frame")
    return out


def video_loop(
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    fps: float = DEFAULT_FPS,
    frames: int = DEFAULT_LOOP_FRAMES,
    bitrate: int = DEFAULT_BITRATE,
) -> VideoLoop:
    """The process's encoded loop for this shape, encoded on first use (about 1 s at 640x480)."""
    width, height = max(16, width) & ~1, max(16, height) & ~1  # 4:2:0 needs even sizes
    key = (width, height, float(fps), frames, bitrate)
    loop = _VIDEO_LOOPS.get(key)
    if loop is None:
        start = time.perf_counter()
        images = _pattern(width, height, frames)
        stream = _encode(_vp8_encoder(width, height, fps, bitrate, gop=10 * frames), images, keyframes=False)
        keys = _encode(
            _vp8_encoder(width, height, fps, bitrate * KEYFRAME_BITRATE_FACTOR, gop=1), images, keyframes=True
        )
        keys[0] = stream[0]  # the stream's own first keyframe: the frames after it were encoded against it
        loop = _VIDEO_LOOPS[key] = VideoLoop(
            width, height, float(fps), tuple(stream), tuple(keys), round(time.perf_counter() - start, 3)
        )
    return loop


def audio_loop() -> AudioLoop:
    """The process's Opus loop: one second of a quiet tone, 20 ms packets, stereo as aiortc negotiates it."""
    if not _AUDIO_LOOP:
        codec = av.CodecContext.create("libopus", "w")
        codec.bit_rate = 32000
        codec.format = "s16"
        codec.layout = "stereo"
        codec.sample_rate = AUDIO_RATE
        codec.time_base = AUDIO_TIME_BASE
        codec.options = {"application": "voip"}
        count = round(AUDIO_LOOP_S / AUDIO_PTIME_S)
        amplitude = AUDIO_TONE_AMPLITUDE * 32767
        packets: list[bytes] = []
        for i in range(count + 4):  # a few extra frames flush the encoder's look-ahead
            stereo = array("h")  # interleaved: left and right the same
            for n in range(i * AUDIO_SAMPLES, (i + 1) * AUDIO_SAMPLES):
                sample = int(amplitude * math.sin(2 * math.pi * AUDIO_TONE_HZ * (n / AUDIO_RATE)))
                stereo.extend((sample, sample))
            frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
            frame.planes[0].update(stereo.tobytes())
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, i * AUDIO_SAMPLES, AUDIO_TIME_BASE
            packets.extend(bytes(p) for p in codec.encode(frame))
        _AUDIO_LOOP.append(AudioLoop(tuple(packets[:count])))
    return _AUDIO_LOOP[0]


def prepare(width: int, height: int, fps: float, audio: bool) -> None:
    """Encode this process's loops now (before any join is timed), so no publisher waits for them."""
    video_loop(width, height, fps)
    if audio:
        audio_loop()


# -- tracks --------------------------------------------------------------------------------


def _ticks_apart(a: int, b: int) -> int:
    diff = (a - b) & 0xFFFFFFFF
    return min(diff, 0x100000000 - diff)


class CaptureClock:
    """When each frame a publisher produced was captured, keyed by the RTP timestamp it went out with.

    Capture time is ``time.monotonic()`` (one clock for every process on Linux).
    aiortc adds a random origin, private to its sender, to each pts: it is learnt
    between two frames from the RTP timestamp the sender last sent
    (``media.taps.sender_last_rtp_timestamp``), once two readings agree.
    """

    def __init__(self) -> None:
        self._last_pts: int | None = None
        self._candidate: int | None = None
        self._confirmations = 0
        self.offset: int | None = None
        self._captures: deque[tuple[int, float]] = deque(maxlen=MAX_CAPTURES)  # (pts in 90 kHz, monotonic)

    def learn(self, sender: Any) -> None:
        """Call before producing a frame: the sender has finished sending the previous one."""
        if self.offset is not None or sender is None or self._last_pts is None:
            return
        last = taps.sender_last_rtp_timestamp(sender)
        if not last:
            return
        candidate = (last - self._last_pts) & 0xFFFFFFFF
        # PyAV may rebase a frame's pts to its encoder's time base: a tick or two off.
        if self._candidate is not None and _ticks_apart(candidate, self._candidate) <= PTS_SLACK_TICKS:
            self._confirmations += 1
            if self._confirmations >= 2:
                self.offset = candidate
        else:
            self._candidate, self._confirmations = candidate, 0

    def record(self, pts: int) -> None:
        self._captures.append((pts, time.monotonic()))
        self._last_pts = pts

    def captures(self) -> list[tuple[int, float]]:
        """(RTP timestamp, capture time) of recent frames; empty if the RTP origin was never learnt."""
        if self.offset is None:
            return []
        return [((pts + self.offset) & 0xFFFFFFFF, t) for pts, t in self._captures]


class _Pacer:
    """Real-time pacing: the n-th packet is due ``n * interval`` after the first."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.count = 0
        self.start: float | None = None

    async def wait(self) -> None:
        if self.start is None:
            self.start = time.monotonic()
        else:
            delay = self.start + self.count * self.interval_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


class PreEncodedVideoTrack(MediaStreamTrack):
    """VP8 from the process's pre-encoded loop, as ``av.Packet`` s, paced at the loop's frame rate.

    ``find_sender(track)`` returns the ``RTCRtpSender`` sending this track (or
    None while there is none): the track taps its RTCP for PLI and FIR, and
    reads the RTP timestamps it sent to learn their origin (for ``captures()``).
    """

    kind = "video"

    def __init__(
        self,
        width: int = DEFAULT_SIZE[0],
        height: int = DEFAULT_SIZE[1],
        fps: float = DEFAULT_FPS,
        find_sender: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__()
        self.loop = video_loop(width, height, fps)
        self.width, self.height = self.loop.width, self.loop.height
        self.count = 0  # packets returned
        self.keyframes_sent = 0
        self.keyframe_requests = 0
        self._want_keyframe = True  # the first packet is a keyframe
        self._pacer = _Pacer(1.0 / fps)
        self._ticks_per_frame = VIDEO_CLOCK / fps
        self._find_sender = find_sender
        self._sender: Any = None
        self.clock = CaptureClock()

    def request_keyframe(self) -> None:
        """Send the keyframe version of the next frame next."""
        self._want_keyframe = True
        self.keyframe_requests += 1

    async def _on_rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.request_keyframe()

    def _bind_sender(self) -> None:
        if self._sender is None and self._find_sender is not None:
            self._sender = self._find_sender(self)
            if self._sender is not None:
                taps.tap_sender(self._sender, self._on_rtcp)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        self._bind_sender()
        self.clock.learn(self._sender)
        await self._pacer.wait()
        index = self.count % len(self.loop.frames)
        keyframe = self._want_keyframe or index == 0
        packet = av.Packet(self.loop.keyframes[index] if self._want_keyframe else self.loop.frames[index])
        self._want_keyframe = False
        pts = round(self.count * self._ticks_per_frame)
        packet.pts, packet.time_base = pts, VIDEO_TIME_BASE
        packet.is_keyframe = keyframe
        self.count += 1
        self._pacer.count = self.count
        self.keyframes_sent += keyframe
        self.clock.record(pts)
        return packet

    def captures(self) -> list[tuple[int, float]]:
        return self.clock.captures()


class PreEncodedAudioTrack(MediaStreamTrack):
    """Opus from the process's pre-encoded loop, 20 ms packets at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.loop = audio_loop()
        self.count = 0
        self._pacer = _Pacer(AUDIO_PTIME_S)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        await self._pacer.wait()
        packet = av.Packet(self.loop.packets[self.count % len(self.loop.packets)])
        packet.pts, packet.time_base = self.count * AUDIO_SAMPLES, AUDIO_TIME_BASE
        self.count += 1
        self._pacer.count = self.count
        return packet


# -- the live source (--source live) ----------------------------------------------------------


class PatternVideoTrack(VideoStreamTrack):
    """A moving bar on black, 30 fps: cheap to generate and to encode, every frame different.

    Capture times are kept by a ``CaptureClock`` for glass-to-glass latency.
    """

    def __init__(self, width: int, height: int, find_sender: Callable[[Any], Any]) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.count = 0
        self._find_sender = find_sender
        self._sender: Any = None
        self.clock = CaptureClock()

    async def recv(self) -> av.VideoFrame:
        if self._sender is None:
            self._sender = self._find_sender(self)
        self.clock.learn(self._sender)
        pts, time_base = await self.next_timestamp()
        bar = 16
        frame = bar_frame(self.width, self.height, (self.count * 4) % max(self.width - bar, 1), bar)
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        ticks = pts if time_base == Fraction(1, VIDEO_CLOCK) else int(pts * time_base * VIDEO_CLOCK)
        self.clock.record(ticks)
        return frame

    def captures(self) -> list[tuple[int, float]]:
        return self.clock.captures()


class MovingPatternTrack(VideoStreamTrack):
    """A small moving test pattern: cheap to encode, and every frame differs (the tests' and benchmarks' camera)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = bar_frame(self.width, self.height, (self.count * 4) % self.width)
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame
