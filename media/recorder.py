"""Show recording: a room's published RTP remuxed into a file a browser plays, never decoded or encoded.

The forwarder hands each packet to a sink (``UpTrack.sinks``) that only queues its immutable fields in a
bounded deque (full: drop and count), so forwarding never waits for the disk. One thread per recording
rebuilds frames with aiortc's depayload and ``JitterBuffer`` and muxes them with PyAV, no codec opened:
VP8 into WebM, H.264 (OBS over WHIP) into fragmented MP4, with Opus; ``.part`` until finalized.
One video and one audio slot: when the active track goes (OBS reconnects) the next one takes over. pts
are unwrapped RTP timestamps anchored at each track's first packet arrival, so audio and video line up
and a re-published track continues the wall-clock timeline. The file starts at a video keyframe.

A recording id may have several parts (``vitrine/core/recording_parts.py``): when the room changes worker, the
next worker's recording of the same id writes the next part, created with O_EXCL so that no earlier part is
ever overwritten, and each file carries its own wall-clock start in its header. See docs/recording.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import av
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.forwarder import PacketSink, UpTrack
from media.taps.frames import jitter_add
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import now_ms
from vitrine.core.recording_parts import STARTED_AT_TAG, next_part, part_name
from vitrine.core.wire.rpc import RecordingInfo

logger = logging.getLogger(__name__)

CLOCK = {"video": 90000, "audio": 48000}
CODECS = {"video/vp8": "vp8", "video/h264": "h264", "audio/opus": "opus"}
JITTER_CAPACITY = {"video": 512, "audio": 16}  # packets: a large keyframe must fit in the video one
MAX_QUEUE = 4096  # packets waiting for the writer thread: about 13 s of a 2.5 Mbit/s show (300 packets/s)
POLL_S = 0.02
STOP_TIMEOUT_S = 30.0
AUDIO_ONLY_AFTER_S = 2.0  # no video track by then: the file is audio-only
KEYFRAME_WAIT_S = 10.0  # video without a keyframe holds the audio back at most this long
MAX_PENDING_AUDIO = 500  # frames (10 s) kept while waiting for the first video keyframe
MAX_DRIFT_S = 5.0  # RTP time this far from arrival time: the publisher's clock jumped, re-anchor
MAX_NUDGE_S = 0.5  # a frame at most this far behind its predecessor is nudged forward, else dropped
KEYFRAME_REQUEST_S = 0.5
# Crash safety: a fragment or cluster at least every second, flushed to the file as each packet goes in.
# MP4 writes a custom metadata key (the part's start) only with use_metadata_tags.
OPTIONS = {
    "mp4": {
        "movflags": "frag_keyframe+empty_moov+default_base_moof+use_metadata_tags",
        "frag_duration": "1000000",
        "flush_packets": "1",
    },
    "webm": {"cluster_time_limit": "1000", "flush_packets": "1"},
}
# RFC 7845 identification header: version 1, 2 channels, no pre-skip, 48 kHz, no gain, mapping family 0.
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 0, 48000, 0, 0)
START_CODE = re.compile(b"\x00\x00\x01")


def nal_units(frame: bytes) -> list[bytes]:
    """The NAL units of an Annex B frame (what aiortc's H.264 depayloader produces)."""
    units = (unit.rstrip(b"\x00") for unit in START_CODE.split(frame)[1:])
    return [unit for unit in units if unit]


def is_keyframe(mime: str, frame: bytes) -> bool:
    """A whole keyframe: VP8 with its key frame header, or H.264 starting on a NAL unit and holding an IDR."""
    if mime == "video/vp8":
        return len(frame) >= 10 and not frame[0] & 1 and frame[3:6] == b"\x9d\x01\x2a"
    starts = frame[:3] == b"\x00\x00\x01" or frame[:4] == b"\x00\x00\x00\x01"  # not a resync's tail
    return starts and any(unit[0] & 0x1F == 5 for unit in nal_units(frame))


def video_size(mime: str, frame: bytes) -> tuple[int, int] | None:
    """The size a keyframe declares (headers need it): VP8's key frame header, or the H.264 SPS read by
    FFmpeg's parser (it only splits and reads headers; its context is never opened). MP4 needs SPS and PPS."""
    if mime == "video/vp8":
        width, height = struct.unpack_from("<HH", frame, 6)
        return width & 0x3FFF, height & 0x3FFF
    if not {7, 8} <= {unit[0] & 0x1F for unit in nal_units(frame)}:
        return None
    try:
        parser = av.CodecContext.create("h264", "r")
        parser.parse(frame)
        parser.parse(None)
    except av.FFmpegError:
        return None
    return (parser.width, parser.height) if parser.width > 0 and parser.height > 0 else None


@dataclass(eq=False)
class _Source:
    """One published track feeding a slot. Its timing state belongs to the writer thread."""

    up: UpTrack
    kind: str
    codec: RTCRtpCodecParameters
    mime: str
    active: bool = False
    sink: PacketSink | None = None
    buffer: JitterBuffer | None = None
    need_keyframe: bool = True
    overflowed: bool = False
    last_ts: int = -1  # RTP timestamp of the latest packet (-1: none yet)
    pts: int = 0  # that packet's time since the recording started, in ticks of the kind's clock
    last_request: float = 0.0


@dataclass
class _Stream:
    stream: Any
    base: int  # ticks of the file's time zero in this stream's clock
    last_pts: int | None = None
    held: av.Packet | None = None  # muxed once the next frame gives it a duration
    duration: int = 0
    frames: int = 0


@dataclass(eq=False)
class Recording:
    """Records one room into the next part of ``recording_id`` in ``directory``; built and driven on the event loop."""

    recording_id: str
    room: str
    directory: Path
    max_queue: int = MAX_QUEUE
    identity: str | None = None  # record only this participant's tracks (the worker attaches accordingly)
    dropped_packets: int = 0
    dropped_frames: int = 0
    error: str | None = None
    finished: bool = False
    part: int = field(default=0, init=False)  # the file's part number; provisional until it is created (``_claim``)
    _slots: dict[str, list[_Source]] = field(default_factory=lambda: {"video": [], "audio": []})
    _sources: dict[UpTrack, _Source] = field(default_factory=dict)
    _queue: deque[tuple[_Source, int, int, bytes, float]] = field(default_factory=deque)
    _pending_audio: deque[tuple[bytes, int]] = field(default_factory=lambda: deque(maxlen=MAX_PENDING_AUDIO))
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _container: Any = None
    _video_mime: str | None = None
    _ext: str | None = None  # known once the file is created
    _dead: bool = False  # the file could not be created: nothing more is recorded
    _failures: int = 0
    _seen: set[str] = field(default_factory=set)  # kinds of every track ever attached

    def __post_init__(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for leftover in self.directory.glob(f"{self.recording_id}.*.part"):  # a crashed worker's playable
                leftover.rename(leftover.with_name(f"{leftover.name}.{now_ms()}"))  # prefix: kept, not overwritten
            self.part = next_part(self.directory, self.recording_id)
        except OSError as exc:
            raise VitrineError(ErrorCode.INTERNAL, f"cannot prepare the recording file ({exc.strerror})") from None
        self._loop = asyncio.get_running_loop()
        self._t0, self.started_at_ms = time.monotonic(), now_ms()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.recording_id}", daemon=True)
        self._thread.start()

    def attach(self, up: UpTrack) -> None:
        """Record this track from now on (or once the active track of its kind goes)."""
        kind, mime = up.track.kind.value, up.codec.mimeType.lower()
        if up in self._sources or mime not in CODECS:
            return
        source = _Source(up, kind, up.codec, mime)
        slot = self._slots[kind]
        slot.append(source)
        self._sources[up] = source
        self._seen.add(kind)
        queue = self._queue

        def sink(packet: RtpPacket, keyframe: bool) -> None:  # on the forwarding path: queue, never wait
            if not source.active:
                return
            if len(queue) >= self.max_queue:
                self.dropped_packets += 1
                source.overflowed = True
                return
            queue.append((source, packet.sequence_number, packet.timestamp, packet.payload, time.monotonic()))

        source.sink = sink
        up.sinks.append(sink)
        if len(slot) == 1:
            source.active = True
            up.request_keyframe()

    def detach(self, up: UpTrack) -> None:
        source = self._sources.pop(up, None)
        if source is None:
            return
        up.sinks[:] = [sink for sink in up.sinks if sink is not source.sink]
        slot = self._slots[source.kind]
        slot.remove(source)
        if source.active and slot:  # the next track of this kind takes over the slot
            slot[0].active = True
            slot[0].up.request_keyframe()
        source.active = False

    def info(self) -> RecordingInfo:
        ext = self._ext or ("mp4" if any(s.active and s.mime == "video/h264" for s in self._slots["video"]) else "webm")
        path = self.directory / part_name(self.recording_id, self.part, ext)
        try:
            size = (path if self.finished else path.with_name(path.name + ".part")).stat().st_size
        except OSError:
            size = 0
        streams = self._streams  # the writer thread replaces it whole, never mutates it in place
        ms = [(s.last_pts + s.duration) * 1000 // CLOCK[k] for k, s in streams.items() if s.last_pts is not None]
        frames = {kind: streams[kind].frames if kind in streams else 0 for kind in CLOCK}
        return RecordingInfo(
            path=path.name,
            part=self.part,
            container=ext,
            started_at_ms=self.started_at_ms,
            duration_ms=max(ms, default=0),
            video_frames=frames["video"],
            audio_frames=frames["audio"],
            bytes=size,
            finished=self.finished,
            dropped_packets=self.dropped_packets,
            dropped_frames=self.dropped_frames,
            error=self.error,
        )

    async def stop(self) -> RecordingInfo | None:
        """Finalize the file; None if nothing was ever written (no file is left then)."""
        for up in list(self._sources):
            self.detach(up)
        self._stop.set()
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
        if self._thread.is_alive():  # a stuck disk: report what there is, the thread renames the file later
            logger.warning("recording %s is still being finalized", self.recording_id)
            self.error = "finalizing timed out"
            return self.info()
        return self.info() if self.finished else None

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            while self._queue:
                item = self._queue.popleft()
                if not self._dead:
                    self._guard(self._process, *item)
            if self._container is None and self._pending_audio and not self._dead:
                waited = time.monotonic() - self._t0
                if stopping or waited > KEYFRAME_WAIT_S or ("video" not in self._seen and waited > AUDIO_ONLY_AFTER_S):
                    self._guard(self._open, None)
            if stopping:
                break
            self._stop.wait(POLL_S)
        self._guard(self._finish)

    def _guard(self, step: Any, *args: Any) -> None:
        """A recorder bug or a muxer error costs a frame (logged, counted), never the thread."""
        try:
            step(*args)
        except Exception as exc:
            self._failures += 1
            self.dropped_frames += 1
            self.error = f"{type(exc).__name__}: {exc}"
            if self._failures <= 5 or self._failures % 1000 == 0:
                logger.exception("recording %s failed %d times", self.recording_id, self._failures)

    def _process(self, source: _Source, seq: int, timestamp: int, payload: bytes, arrival: float) -> None:
        if source.buffer is None or source.overflowed:  # first packet, or packets were dropped: start afresh
            source.overflowed = False
            source.buffer = JitterBuffer(JITTER_CAPACITY[source.kind], is_video=source.kind == "video")
            source.need_keyframe = True
        # Unwrap the 32-bit RTP timestamp, anchored at the track's first packet arrival. A packet far from
        # its arrival time means the publisher's clock jumped: re-anchor there.
        clock, arrived = CLOCK[source.kind], round((arrival - self._t0) * CLOCK[source.kind])
        if source.last_ts < 0:
            source.last_ts, source.pts = timestamp, arrived
        source.pts += _ticks(timestamp, source.last_ts)
        source.last_ts = timestamp
        if abs(source.pts - arrived) > MAX_DRIFT_S * clock:
            source.pts = arrived
        try:
            data = depayload(source.codec, payload) if payload else b""
        except ValueError:  # a malformed payload
            self.dropped_frames += 1
            return
        lost, frame = jitter_add(source.buffer, RtpPacket(sequence_number=seq, timestamp=timestamp), data)
        if lost:
            source.need_keyframe = True
        if frame is not None:
            pts = source.pts + _ticks(frame.timestamp, source.last_ts)
            if abs(pts - arrived) > MAX_DRIFT_S * clock:  # from before a clock jump: its time is unknown
                self.dropped_frames += 1
            else:
                self._on_frame(source, frame.data, pts)

    def _on_frame(self, source: _Source, data: bytes, pts: int) -> None:
        if source.kind == "audio":
            if self._container is None:
                self._pending_audio.append((data, pts))
            else:
                self._write("audio", data, pts, True)
            return
        keyframe = is_keyframe(source.mime, data)
        if source.need_keyframe:
            if keyframe and (self._container is not None or video_size(source.mime, data) is not None):
                source.need_keyframe = False
            else:
                self.dropped_frames += 1
                if time.monotonic() - source.last_request >= KEYFRAME_REQUEST_S:
                    source.last_request = time.monotonic()
                    with contextlib.suppress(RuntimeError):  # a closed loop: the worker is going away
                        self._loop.call_soon_threadsafe(source.up.request_keyframe)
                return
        if self._container is None:
            self._open((source, data, pts))
        elif source.mime != self._video_mime:
            self.dropped_frames += 1  # the file's video stream has another codec
        else:
            self._write("video", data, pts, keyframe)

    def _open(self, video: tuple[_Source, bytes, int] | None) -> None:
        """Create the file once its streams are known: at the first video keyframe, or audio-only."""
        ext = "mp4" if video and video[0].mime == "video/h264" else "webm"
        container, streams = None, {}
        try:
            container = av.open(str(self._claim(ext)), "w", format=ext, options=OPTIONS[ext])
            if video is not None:
                source, data, pts = video
                width, height = video_size(source.mime, data) or (0, 0)
                stream = container.add_mux_stream(CODECS[source.mime], width=width, height=height)
                stream.time_base = Fraction(1, CLOCK["video"])
                streams["video"] = _Stream(stream, pts)
            zero = Fraction(video[2] if video else self._pending_audio[0][1], CLOCK["video" if video else "audio"])
            if "audio" in self._seen:  # an audio track that comes later has no stream
                streams["audio"] = _Stream(_opus_stream(container), round(zero * CLOCK["audio"]))
            started_at_ms = self.started_at_ms + round(zero * 1000)
            container.metadata[STARTED_AT_TAG] = str(started_at_ms)  # in the header: a crash's prefix keeps it
        except Exception:  # no file then: a recorder that cannot create it records nothing more
            self._dead = True
            self._pending_audio.clear()
            if container is not None:
                container.close()
            raise
        self._ext, self._container, self._streams, self._video_mime = ext, container, streams, video and video[0].mime
        self.started_at_ms = started_at_ms
        if video is not None:
            self._write("video", video[1], video[2], True)
        while self._pending_audio:
            self._write("audio", *self._pending_audio.popleft(), True)

    def _claim(self, ext: str) -> Path:
        """Create this part's file (``.part``), empty, never over another part: the next number on disk, taken
        with O_EXCL and given up if a finished file has that name. The system never runs two recorders of one
        id at a time, so the first try wins; were two racing, each would still get a part of its own."""
        while True:
            self.part = next_part(self.directory, self.recording_id)
            final = self.directory / part_name(self.recording_id, self.part, ext)
            claim = final.with_name(final.name + ".part")
            try:
                os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            if not final.exists():
                return claim
            claim.unlink()

    def _write(self, kind: str, data: bytes, pts: int, keyframe: bool) -> None:
        out = self._streams.get(kind)
        if out is None:
            self.dropped_frames += 1  # the file was created without a stream of this kind
            return
        pts -= out.base
        if pts < 0:
            return  # before the file's first keyframe
        if out.last_pts is not None and pts <= out.last_pts:
            if out.last_pts - pts > MAX_NUDGE_S * CLOCK[kind]:
                self.dropped_frames += 1
                return
            pts = out.last_pts + 1  # muxers refuse a DTS that does not increase
        packet = av.Packet(data)
        packet.stream, packet.time_base = out.stream, Fraction(1, CLOCK[kind])
        packet.pts = packet.dts = pts
        packet.is_keyframe = keyframe
        held, out.held, out.last_pts = out.held, packet, pts
        out.frames += 1
        if held is not None:
            out.duration = held.duration = pts - cast(int, held.pts)  # set to an int above, a frame ago
            self._container.mux(held)

    def _finish(self) -> None:
        if self._container is None or self._ext is None:  # set together, once the file is created
            return
        try:
            for out in self._streams.values():
                if out.held is not None:
                    out.held.duration = out.duration
                    self._container.mux(out.held)
                    out.held = None
            self._container.close()
        finally:
            path = self.directory / part_name(self.recording_id, self.part, self._ext)
            os.replace(path.with_name(path.name + ".part"), path)
            self.finished = True


def _ticks(timestamp: int, reference: int) -> int:
    """How far a 32-bit RTP timestamp is after a recent one, across the wrap (negative: before it)."""
    return ((timestamp - reference + 2**31) & 0xFFFFFFFF) - 2**31


def _opus_stream(container: Any) -> Any:
    """An Opus stream with OpusHead (MP4's dOps box and browsers need it), which ``add_mux_stream`` cannot
    carry: copied from an unopened libopus context, a template PyAV never opens."""
    scratch = av.open(BytesIO(), "w", format="matroska")
    try:
        stream = container.add_stream_from_template(scratch.add_stream("libopus", rate=CLOCK["audio"]))
    finally:
        scratch.close()
    stream.codec_context.extradata = OPUS_HEAD
    stream.time_base = Fraction(1, CLOCK["audio"])
    return stream
