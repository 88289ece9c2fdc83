"""Per-subscriber media quality from RTP alone, without decoding.

A counting subscriber hands every RTP packet of a video track (RTX already
unwrapped, so a recovered packet carries its original sequence number) to
:class:`VideoQuality`, which rebuilds frames the way a receiver's jitter
buffer would:

* packets are grouped into frames by RTP timestamp;
* a frame is **complete** when every sequence number from its first packet
  (the VP8 start-of-partition-0 bit, else the packet after the previous
  frame's marker) to its marker packet arrived, retransmissions included;
* a frame is **decodable** when it is complete and is a keyframe
  (``media.keyframes.is_keyframe``) or directly follows a decodable frame;
* frames are settled in RTP-timestamp order; a complete frame waits while
  packets before it are missing (a whole frame may be lost and its
  retransmission on the way), and an incomplete frame is given up, after
  ``FRAME_TIMEOUT_S`` or as soon as a later complete keyframe exists;
* a **lost** frame is one missing entirely (a gap in RTP timestamps at the
  publisher's frame interval) or one given up incomplete;
* a **freeze** is a gap between two consecutive decodable frames longer than
  ``max(3 x mean frame interval, mean frame interval + 150 ms)``, where the
  mean is over the previous (up to 30) non-freeze gaps. A frame becomes
  decodable when its last packet arrives, but never before the frame it
  depends on (a keyframe depends on none).

:class:`LossRecovery` keeps the subscriber recovering loss as a good receiver
would (the harness's own clients must not be the weakest link): it NACKs gaps
again until they arrive (``media.forwarder.NackTracker``) and asks for a
keyframe (PLI) when no decodable frame arrived for ``PLI_AFTER_S``.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.stats import distribution
from media.forwarder import NackTracker
from media.keyframes import is_keyframe

FRAME_TIMEOUT_S = 1.0  # an incomplete frame is given up this long after its first packet
PLI_AFTER_S = 0.3  # ask for a keyframe when no decodable frame arrived for this long
FREEZE_WINDOW = 30  # gaps averaged into the "mean frame interval"
FREEZE_MIN_EXTRA_S = 0.150
RTP_HEADER_BYTES = 12
MAX_G2G_SAMPLES = 4000  # the latest frames (about 2 minutes at 30 fps); publishers keep a little more
MAX_PENDING_FRAMES = 512
TS_MATCH_SLACK = (0, -1, 1, -2, 2, -3, 3)


def unwrap(value: int, reference: int | None, bits: int) -> int:
    """Extend a wrapping ``bits``-bit counter to an unbounded int, nearest to ``reference``."""
    if reference is None:
        return value
    modulus = 1 << bits
    diff = (value - reference) % modulus
    if diff >= modulus >> 1:
        diff -= modulus
    return reference + diff


def vp8_frame_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 frame: S bit set, partition index 0 (RFC 7741)."""
    return bool(payload) and bool(payload[0] & 0x10) and payload[0] & 0x07 == 0


class FreezeDetector:
    """Freezes among the display times of decodable frames (see the module docstring)."""

    def __init__(self, nominal_interval_s: float | None = None, window: int = FREEZE_WINDOW) -> None:
        self.nominal = nominal_interval_s
        self.gaps: deque[float] = deque(maxlen=window)
        self.last: float | None = None
        self.first: float | None = None
        self.count = 0
        self.total_s = 0.0
        self.max_s = 0.0
        self.frames = 0

    def threshold(self) -> float | None:
        mean = sum(self.gaps) / len(self.gaps) if self.gaps else self.nominal
        if mean is None:
            return None
        return max(3 * mean, mean + FREEZE_MIN_EXTRA_S)

    def _gap(self, gap: float, final: bool = False) -> None:
        limit = self.threshold()
        if limit is not None and gap > limit:
            self.count += 1
            self.total_s += gap
            self.max_s = max(self.max_s, gap)
        elif not final:
            self.gaps.append(gap)

    def add(self, t: float) -> None:
        self.frames += 1
        if self.last is None:
            self.first = t
        else:
            self._gap(max(0.0, t - self.last))
        self.last = t

    def finish(self, end: float) -> None:
        """Count a freeze still in progress at ``end`` (no frame since the last one)."""
        if self.last is not None and end > self.last:
            self._gap(end - self.last, final=True)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "total_ms": round(self.total_s * 1000, 1), "max_ms": round(self.max_s * 1000, 1)}


def detect_freezes(
    times: list[float], nominal_interval_s: float | None = None, end: float | None = None
) -> FreezeDetector:
    detector = FreezeDetector(nominal_interval_s)
    for t in times:
        detector.add(t)
    if end is not None:
        detector.finish(end)
    return detector


@dataclass
class Frame:
    ts: int  # extended RTP timestamp
    ts32: int
    first_arrival: float
    last_arrival: float = 0.0  # arrival of the last new packet: completion time once complete
    seqs: set[int] = field(default_factory=set)  # extended sequence numbers
    start_seq: int | None = None
    marker_seq: int | None = None
    keyframe: bool = False


class VideoQuality:
    """RTP-level frame accounting for one subscribed video track."""

    def __init__(
        self, codec_mime: str = "video/VP8", clock_rate: int = 90000, nominal_fps: float | None = None
    ) -> None:
        self.mime = codec_mime.lower()
        self.vp8 = self.mime == "video/vp8"
        self.clock_rate = clock_rate
        self.nominal_interval_ticks = clock_rate / nominal_fps if nominal_fps else None
        self.freezes = FreezeDetector(1.0 / nominal_fps if nominal_fps else None)
        self.frames: dict[int, Frame] = {}
        self.pending: list[int] = []  # extended timestamps of unsettled frames, ascending
        self.max_seq: int | None = None
        self.max_ts: int | None = None
        self.started = False
        # The last settled frame (or the anchor the accounting started after).
        self.prev_ts: int | None = None
        self.prev_marker_seq: int | None = None
        self.prev_decodable = True
        self.prev_real = False  # False while prev_* is only the anchor accounting started after
        self.last_display: float | None = None
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.deltas: deque[int] = deque(maxlen=64)
        # Counters.
        self.packets = 0
        self.bytes = 0
        self.duplicates = 0
        self.late_packets = 0
        self.recovered = 0  # packets that filled a gap (retransmissions, reordering)
        self.frames_complete = 0
        self.frames_decodable = 0
        self.frames_incomplete = 0
        self.frames_undecodable = 0
        self.frames_missing = 0
        self.keyframes = 0
        self.jitter_ticks = 0.0
        self._transit: float | None = None
        # (RTP timestamp, arrival of the frame's last packet) of the latest complete frames
        self.g2g: deque[tuple[int, float]] = deque(maxlen=MAX_G2G_SAMPLES)

    def set_codec(self, mime: str, clock_rate: int | None = None) -> None:
        """The negotiated codec, once known (before the first packet)."""
        self.mime = mime.lower()
        self.vp8 = self.mime == "video/vp8"
        if clock_rate:
            if self.nominal_interval_ticks:
                self.nominal_interval_ticks *= clock_rate / self.clock_rate
            self.clock_rate = clock_rate

    # -- packets -----------------------------------------------------------------

    def on_packet(self, seq: int, timestamp: int, marker: bool, payload: bytes, arrival: float) -> None:
        seq_ext = unwrap(seq, self.max_seq, 16)
        ts_ext = unwrap(timestamp, self.max_ts, 32)
        self.packets += 1
        self.bytes += len(payload) + RTP_HEADER_BYTES
        if self.first_arrival is None:
            self.first_arrival = arrival
        self.last_arrival = arrival
        newest = self.max_seq is None or seq_ext > self.max_seq
        if newest:
            if self.max_seq is not None and self.max_ts is not None:
                transit = arrival * self.clock_rate - ts_ext
                if self._transit is not None:  # RFC 3550 section 6.4.1
                    self.jitter_ticks += (abs(transit - self._transit) - self.jitter_ticks) / 16.0
                self._transit = transit
            else:
                self._transit = arrival * self.clock_rate - ts_ext
            self.max_seq = seq_ext
        if self.max_ts is None or ts_ext > self.max_ts:
            self.max_ts = ts_ext
        frame_start = self.vp8 and vp8_frame_start(payload)
        if not self.started:
            # Start on a frame boundary: a frame's first packet, or just after a marker.
            if frame_start:
                self._anchor(ts_ext - 1, seq_ext - 1, real=False)
            elif marker:
                self._anchor(ts_ext, seq_ext, real=True)
                return
            else:
                return
        if self.prev_ts is not None and ts_ext <= self.prev_ts:
            self.late_packets += 1
            return
        frame = self.frames.get(ts_ext)
        if frame is None:
            if len(self.pending) >= MAX_PENDING_FRAMES:  # a stream gone mad: settle the oldest
                self._settle(self.frames[self.pending[0]], complete=False)
            frame = self.frames[ts_ext] = Frame(ts=ts_ext, ts32=timestamp & 0xFFFFFFFF, first_arrival=arrival)
            bisect.insort(self.pending, ts_ext)
        if seq_ext in frame.seqs:
            self.duplicates += 1
            return
        if not newest:
            self.recovered += 1
        frame.seqs.add(seq_ext)
        frame.last_arrival = arrival
        if frame_start:
            frame.start_seq = seq_ext
        if marker:
            frame.marker_seq = seq_ext
        if not frame.keyframe and is_keyframe(self.mime, payload):
            frame.keyframe = True

    def _anchor(self, ts_ext: int, marker_seq: int, real: bool) -> None:
        """Begin accounting after this point, as if a decodable frame had just ended there.

        ``real``: ``ts_ext`` is an actual frame's timestamp (a gap after it counts as missing frames).
        """
        self.started = True
        self.prev_ts = ts_ext
        self.prev_marker_seq = marker_seq
        self.prev_decodable = True
        self.prev_real = real

    # -- frames --------------------------------------------------------------------

    def _start_of(self, frame: Frame) -> int | None:
        if frame.start_seq is not None:
            return frame.start_seq
        return None if self.prev_marker_seq is None else self.prev_marker_seq + 1

    def _is_complete(self, frame: Frame) -> bool:
        start, end = self._start_of(frame), frame.marker_seq
        if start is None or end is None or end < start:
            return False
        seqs = frame.seqs
        return len(seqs) == end - start + 1 and min(seqs) == start and max(seqs) == end

    def _follows_previous(self, frame: Frame) -> bool:
        """No packet is missing between the last settled frame and ``frame``."""
        start = self._start_of(frame)
        return start is not None and self.prev_marker_seq is not None and start == self.prev_marker_seq + 1

    def _interval(self) -> float | None:
        if self.nominal_interval_ticks:
            return self.nominal_interval_ticks
        if not self.deltas:
            return None
        ordered = sorted(self.deltas)
        return ordered[len(ordered) // 2]

    def _settle(self, frame: Frame, complete: bool) -> None:
        self.pending.remove(frame.ts)
        del self.frames[frame.ts]
        missing = 0
        if self.prev_ts is not None and self.prev_real:
            delta = frame.ts - self.prev_ts
            interval = self._interval()
            if delta > 0:
                self.deltas.append(delta)
            if interval:
                missing = max(0, round(delta / interval) - 1)
        self.frames_missing += missing
        start = self._start_of(frame)
        if self.prev_marker_seq is not None and start is not None:
            adjacent = start == self.prev_marker_seq + 1
        else:
            adjacent = missing == 0
        chain = self.prev_decodable and adjacent
        decodable = complete and (frame.keyframe or chain)
        if complete:
            self.frames_complete += 1
            self.g2g.append((frame.ts32, frame.last_arrival))
        else:
            self.frames_incomplete += 1
        if decodable:
            self.frames_decodable += 1
            if frame.keyframe:
                self.keyframes += 1
            display = frame.last_arrival
            if not frame.keyframe and self.last_display is not None:
                display = max(display, self.last_display)
            self.last_display = display
            self.freezes.add(display)
        elif complete:
            self.frames_undecodable += 1
        self.prev_ts = frame.ts
        self.prev_marker_seq = frame.marker_seq
        self.prev_decodable = decodable
        self.prev_real = True

    def _later_complete_keyframe(self) -> bool:
        for ts in self.pending[1:]:
            frame = self.frames[ts]
            if frame.keyframe and frame.start_seq is not None and self._span_complete(frame):
                return True
        return False

    @staticmethod
    def _span_complete(frame: Frame) -> bool:
        start, end = frame.start_seq, frame.marker_seq
        if start is None or end is None or end < start:
            return False
        return len(frame.seqs) == end - start + 1

    def advance(self, now: float) -> None:
        """Settle frames in timestamp order as far as they can be settled at ``now``."""
        while self.pending:
            head = self.frames[self.pending[0]]
            complete = self._is_complete(head)
            # A jitter buffer holds a complete frame back while packets before it are missing (a whole
            # frame may be lost, and its retransmission on the way) unless waiting cannot help.
            if complete and (head.keyframe or not self.prev_decodable or self._follows_previous(head)):
                self._settle(head, complete=True)
            elif now - head.first_arrival > FRAME_TIMEOUT_S or self._later_complete_keyframe():
                self._settle(head, complete=complete)
            else:
                break

    @property
    def last_decodable_at(self) -> float | None:
        return self.last_display

    # -- results ---------------------------------------------------------------------

    def finish(self, start: float, end: float) -> dict[str, Any]:
        """Settle what can be settled and summarise the window ``start``..``end`` (monotonic seconds).

        Frames still incomplete and younger than ``FRAME_TIMEOUT_S`` at ``end`` are in flight:
        they are not counted.
        """
        self.advance(end)
        self.freezes.finish(end)
        window = max(end - start, 1e-9)
        expected = self.frames_decodable + self.frames_undecodable + self.frames_incomplete + self.frames_missing
        return {
            "window_s": round(window, 3),
            "packets": self.packets,
            "packets_recovered": self.recovered,
            "duplicates": self.duplicates,
            "late_packets": self.late_packets,
            "frames_expected": expected,
            "frames_delivered": self.frames_decodable,
            "frames_lost": self.frames_missing + self.frames_incomplete,
            "frames_missing": self.frames_missing,
            "frames_incomplete": self.frames_incomplete,
            "frames_undecodable": self.frames_undecodable,
            "keyframes": self.keyframes,
            "delivered_ratio": round(self.frames_decodable / expected, 4) if expected else None,
            "frame_rate": round(self.frames_decodable / window, 2),
            "freezes": self.freezes.as_dict(),
            "bitrate_kbps": round(self.bytes * 8 / window / 1000, 1),
            "jitter_ms": round(self.jitter_ticks / self.clock_rate * 1000, 2),
        }


class AudioQuality:
    """Packets, bytes and sequence-number loss of a subscribed audio track."""

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.max_seq: int | None = None
        self.min_seq: int | None = None
        self.seen: set[int] = set()

    def on_packet(self, seq: int, payload: bytes) -> None:
        seq_ext = unwrap(seq, self.max_seq, 16)
        self.packets += 1
        self.bytes += len(payload) + RTP_HEADER_BYTES
        if len(self.seen) < 1_000_000:
            self.seen.add(seq_ext)
        self.max_seq = seq_ext if self.max_seq is None else max(self.max_seq, seq_ext)
        self.min_seq = seq_ext if self.min_seq is None else min(self.min_seq, seq_ext)

    def finish(self, window_s: float) -> dict[str, Any]:
        expected = (self.max_seq - self.min_seq + 1) if self.max_seq is not None and self.min_seq is not None else 0
        return {
            "packets": self.packets,
            "bitrate_kbps": round(self.bytes * 8 / max(window_s, 1e-9) / 1000, 1),
            "loss_ratio": round(1 - len(self.seen) / expected, 4) if expected else None,
        }


SendNack = Callable[[int, list[int]], None]  # fire and forget: the receive path never waits on a send
SendPli = Callable[[int], None]


class LossRecovery:
    """A counting subscriber's receive path: NACK with retries, PLI on stalls, and the accounting.

    ``send_nack(ssrc, seqs)`` and ``send_pli(ssrc)`` are injected (``media.taps.send_nack`` and
    ``send_pli`` bound to the receiver in the harness; recorders in tests).
    """

    def __init__(
        self, quality: VideoQuality, send_nack: SendNack, send_pli: SendPli, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quality = quality
        self.send_nack = send_nack
        self.send_pli = send_pli
        self.clock = clock
        self.nacks = NackTracker()
        self.ssrc: int | None = None
        self.started_at = clock()
        self.last_pli = float("-inf")
        self.nacks_sent = 0  # RTCP NACK messages
        self.nacked_packets = 0  # sequence numbers asked for, retries included
        self.plis_sent = 0

    def on_rtp(self, seq: int, timestamp: int, marker: bool, payload: bytes, ssrc: int) -> None:
        now = self.clock()
        self.ssrc = ssrc
        due, abandoned = self.nacks.on_packet(seq, now)
        if due:
            self.nacks_sent += 1
            self.nacked_packets += len(due)
            self.send_nack(ssrc, sorted(due))
        self.quality.on_packet(seq, timestamp, marker, payload, now)
        self.quality.advance(now)
        if abandoned:
            self._pli(now)
        self.check_stall(now)

    def check_stall(self, now: float | None = None) -> None:
        """PLI when no decodable frame arrived for PLI_AFTER_S (call it periodically too)."""
        now = self.clock() if now is None else now
        self.quality.advance(now)
        last = self.quality.last_decodable_at
        since = now - max(last if last is not None else self.started_at, self.started_at)
        if since > PLI_AFTER_S:
            self._pli(now)

    def _pli(self, now: float) -> None:
        if self.ssrc is None or now - self.last_pli < PLI_AFTER_S:
            return
        self.last_pli = now
        self.plis_sent += 1
        self.send_pli(self.ssrc)

    def counters(self) -> dict[str, int]:
        return {"nacks_sent": self.nacks_sent, "nacked_packets": self.nacked_packets, "plis_sent": self.plis_sent}


def glass_to_glass_ms(samples: list[tuple[int, float]], captures: dict[int, float]) -> list[float]:
    """Arrival of each frame's last packet minus its capture time, matched by RTP timestamp."""
    out = []
    for ts, arrival in samples:
        captured = None
        for slack in TS_MATCH_SLACK:  # the sender's RTP timestamp may be a tick or two off the capture pts
            captured = captures.get((ts + slack) & 0xFFFFFFFF)
            if captured is not None:
                break
        if captured is not None and arrival >= captured:
            out.append(round((arrival - captured) * 1000, 2))
    return out


def summarise_glass_to_glass(values: list[float]) -> dict[str, Any]:
    return distribution(values)
