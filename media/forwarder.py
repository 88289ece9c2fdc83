"""Selective forwarding: RTP from one publisher track to many subscriber senders.

Packets are forwarded as they arrive, never decoded or re-encoded. Each
subscriber gets its own SSRC, payload type and sequence space (the numbering
its SDP negotiated), starts on a keyframe, and has its NACKs answered from
the publisher track's packet history. Upstream loss is NACKed with retries
and a stall turns into a quick keyframe request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from struct import pack, pack_into

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

from media import taps
from media.keyframes import is_keyframe
from media.metrics import TOTALS
from media.taps.rtp import untap_sender
from vitrine.core.models import Track, TrackKind
from vitrine.core.tasks import TaskSet

logger = logging.getLogger(__name__)

# Something else that wants every packet of a published track (the recorder), with its keyframe flag.
# Called synchronously from on_rtp: it must be cheap and must not keep the packet's mutable fields.
PacketSink = Callable[[RtpPacket, bool], None]

HISTORY_SIZE = 2048  # packets kept per published track for retransmission
GOP_REPLAY_PACKETS = 600  # a new subscriber starts on the cached keyframe if it is at most this far back
GOP_REPLAY_MAX_AGE_S = 0.5  # and at most this old: a longer backlog would play out late in the browser
KEYFRAME_REQUEST_INTERVAL_S = 0.25
NACK_RETRY_S = 0.05
NACK_MAX_TRIES = 6
NACK_GIVE_UP_S = 0.6
MAX_TRACKED_GAP = 512


def seq_newer(a: int, b: int) -> bool:
    """RFC 1982 serial comparison of 16-bit sequence numbers: is ``a`` after ``b``?"""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class PacketHistory:
    """A ring of recent packets by sequence number."""

    __slots__ = ("_slots", "_mask")

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self._slots: list[tuple[int, RtpPacket] | None] = [None] * size
        self._mask = size - 1

    def add(self, seq: int, packet: RtpPacket) -> None:
        self._slots[seq & self._mask] = (seq, packet)

    def get(self, seq: int) -> RtpPacket | None:
        entry = self._slots[seq & self._mask]
        return entry[1] if entry is not None and entry[0] == seq else None


@dataclass
class _Gap:
    first_s: float
    last_nack_s: float = 0.0
    tries: int = 0


class NackTracker:
    """Upstream loss recovery: NACK each missing packet again until it arrives or is hopeless.

    aiortc's receiver NACKs a gap once; a lost retransmission then freezes video
    until the next keyframe. Here a gap is retried and, once given up, reported
    so the caller can ask for a keyframe instead.
    """

    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.missing: dict[int, _Gap] = {}

    def on_packet(self, seq: int, now: float) -> tuple[list[int], bool]:
        """Record ``seq``; return (sequence numbers to NACK now, whether a gap was abandoned)."""
        if self.max_seq is None:
            self.max_seq = seq
            return [], False
        if seq_newer(seq, self.max_seq):
            gap = (seq - self.max_seq - 1) & 0xFFFF
            if gap > MAX_TRACKED_GAP:
                self.missing.clear()  # a jump, not loss: resync
            else:
                for offset in range(1, gap + 1):
                    self.missing[(self.max_seq + offset) & 0xFFFF] = _Gap(first_s=now)
            self.max_seq = seq
        else:
            self.missing.pop(seq, None)
        if not self.missing:
            return [], False
        due: list[int] = []
        abandoned = False
        for missing_seq, gap_state in list(self.missing.items()):
            if gap_state.tries >= NACK_MAX_TRIES or now - gap_state.first_s > NACK_GIVE_UP_S:
                del self.missing[missing_seq]
                abandoned = True
            elif now - gap_state.last_nack_s >= NACK_RETRY_S:
                gap_state.last_nack_s = now
                gap_state.tries += 1
                due.append(missing_seq)
        return due, abandoned


class SilentTrack(MediaStreamTrack):
    """A sender's track that never yields a frame: forwarding writes RTP itself.

    It keeps aiortc's sender loop parked (no polling, no encoder) and gives the
    SDP the published track's id as its msid.
    """

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self._parked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> None:  # type: ignore[override]
        await self._parked
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if not self._parked.done():
            self._parked.cancel()


@dataclass
class ForwardingCounters:
    packets_in: int = 0
    bytes_in: int = 0  # RTP payload
    nacks_sent_upstream: int = 0
    keyframe_requests: int = 0
    plis_from_subscribers: int = 0
    sink_errors: int = 0


class UpTrack:
    """A published track on this worker and the subscribers it feeds."""

    def __init__(self, track: Track, receiver: RTCRtpReceiver, codec: RTCRtpCodecParameters) -> None:
        self.track = track
        self.receiver = receiver
        self.codec = codec
        self.is_video = track.kind == TrackKind.VIDEO
        self.downs: dict[str, DownTrack] = {}
        self.sinks: list[PacketSink] = []
        self.history = PacketHistory()
        self.nacks = NackTracker()
        self.media_ssrc: int | None = None
        self.counters = ForwardingCounters()
        TOTALS.follow(self, self.counters)  # process-wide totals outlive the track (/metrics)
        self.max_seq: int | None = None
        # First packet of the latest keyframe still in history: a subscriber that
        # connects starts there at once instead of waiting for a new keyframe.
        self.keyframe_seq: int | None = None
        self.keyframe_arrival = 0.0
        self._keyframe_timestamp: int | None = None
        self._last_keyframe_request = 0.0
        self._feedback = TaskSet()  # PLIs and NACKs upstream, sent without making on_rtp wait
        taps.tap_receiver_sync(receiver, self.on_rtp)
        taps.deliver_rtp_now(receiver.transport)

    def on_rtp(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        self.counters.packets_in += 1
        self.counters.bytes_in += len(packet.payload)
        self.media_ssrc = packet.ssrc
        seq = packet.sequence_number
        if self.is_video:
            due, abandoned = self.nacks.on_packet(seq, time.monotonic())
            if due:
                self.counters.nacks_sent_upstream += 1
                self._feedback.spawn(taps.send_nack(self.receiver, packet.ssrc, sorted(due)))
            if abandoned:
                self.request_keyframe()
        # Subscribers demultiplex by the SSRC their SDP announced, so the
        # publisher's MID is dropped and one serialisation serves them all.
        packet.extensions.mid = None
        self.history.add(seq, packet)
        keyframe = self.is_video and is_keyframe(codec.mimeType, packet.payload)
        if self.max_seq is None or seq_newer(seq, self.max_seq):
            self.max_seq = seq
        if keyframe and packet.timestamp != self._keyframe_timestamp:
            self.keyframe_seq, self._keyframe_timestamp = seq, packet.timestamp
            self.keyframe_arrival = time.monotonic()
        elif self.keyframe_seq is not None and (self.max_seq - self.keyframe_seq) & 0xFFFF > GOP_REPLAY_PACKETS:
            self.keyframe_seq = None
        if self.sinks:
            self._feed_sinks(packet, keyframe)
        if not self.downs:
            return
        ntp = clock.current_ntp_time()
        packet.extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
        wire: dict[tuple[object, ...], bytes] = {}
        for down in list(self.downs.values()):
            down.forward(seq, packet, keyframe, wire, ntp)

    def _feed_sinks(self, packet: RtpPacket, keyframe: bool) -> None:
        """A failing sink is dropped (and counted), never allowed to break forwarding."""
        for sink in list(self.sinks):
            try:
                sink(packet, keyframe)
            except Exception:
                self.counters.sink_errors += 1
                if sink in self.sinks:
                    self.sinks.remove(sink)
                logger.exception("a packet sink of track %s failed and was detached", self.track.sid)

    def replayable_keyframe(self) -> int | None:
        """Where a new subscriber can start at once: a cached keyframe recent enough to replay."""
        if self.keyframe_seq is None or time.monotonic() - self.keyframe_arrival > GOP_REPLAY_MAX_AGE_S:
            return None
        return self.keyframe_seq

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most every KEYFRAME_REQUEST_INTERVAL_S."""
        now = time.monotonic()
        if not self.is_video or self.media_ssrc is None:
            return
        if now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL_S:
            return
        self._last_keyframe_request = now
        self.counters.keyframe_requests += 1
        self._feedback.spawn(taps.send_pli(self.receiver, self.media_ssrc))

    def close(self) -> None:
        for down in list(self.downs.values()):
            down.detach()


@dataclass
class DownCounters:
    packets: int = 0
    bytes_out: int = 0  # RTP payload
    retransmitted: int = 0
    nacks: int = 0
    plis: int = 0
    dropped_before_keyframe: int = 0
    replayed: int = 0


class DownTrack:
    """One subscriber's copy of an UpTrack: header rewriting, keyframe start, NACK answers."""

    def __init__(self, up: UpTrack, subscriber_sid: str, transceiver: RTCRtpTransceiver) -> None:
        self.up = up
        self.subscriber_sid = subscriber_sid
        self.transceiver = transceiver
        self.sender: RTCRtpSender = transceiver.sender
        self.binding: taps.SenderBinding | None = None
        self.started = False
        self.start_seq = 0
        self.seq_offset = 0
        self._rtx_seq = random.randint(0, 0x7FFF)
        self.counters = DownCounters()
        TOTALS.follow(self, self.counters)
        taps.disable_sender_feedback(self.sender)
        taps.tap_sender(self.sender, self.on_rtcp)
        taps.on_sender_started(self.sender, self._on_sender_started)
        up.downs[subscriber_sid] = self
        # Ask now, while the subscriber connects: the keyframe is cached by the time it is ready.
        up.request_keyframe()

    def _bind(self) -> bool:
        if taps.sender_started(self.sender) and taps.transport_connected(self.sender.transport):
            self.binding = taps.SenderBinding(self.sender, self.transceiver)
            return True
        return False

    def forward(
        self, seq: int, packet: RtpPacket, keyframe: bool, wire: dict[tuple[object, ...], bytes], ntp: int
    ) -> None:
        """Rewrite and send one packet. ``wire`` caches its serialisation per extension layout."""
        binding = self.binding
        if binding is None:
            if not self._bind():
                return
            binding = self.binding
            assert binding is not None
        if not self.started:
            if self.up.is_video and not keyframe:
                cached = self.up.replayable_keyframe()
                if cached is None or seq_newer(cached, seq):
                    self.counters.dropped_before_keyframe += 1
                    self.up.request_keyframe()
                    return
                self._start(cached)
                self._replay(cached, ntp)
                return
            self._start(seq)
        elif seq_newer(self.start_seq, seq):
            return  # older than the keyframe we started on
        template = wire.get(binding.extension_ids)
        if template is None:
            template = wire[binding.extension_ids] = packet.serialize(binding.extensions)
        data = bytearray(template)
        data[1] = (data[1] & 0x80) | binding.payload_type
        pack_into("!H", data, 2, (seq + self.seq_offset) & 0xFFFF)
        pack_into("!I", data, 8, binding.ssrc)
        if binding.send(bytes(data)):
            self.counters.packets += 1
            self.counters.bytes_out += len(packet.payload)
            binding.record_sent(ntp, packet.timestamp, len(packet.payload))

    def _on_sender_started(self) -> None:
        """Send the cached keyframe the moment the subscriber can take it, not at the next packet."""
        if self.started or self.binding is not None or not self._bind():
            return
        cached = self.up.replayable_keyframe()
        if self.up.is_video and cached is not None and self.up.downs.get(self.subscriber_sid) is self:
            self._start(cached)
            self._replay(cached, clock.current_ntp_time())

    def _start(self, seq: int) -> None:
        self.started = True
        self.start_seq = seq
        self.seq_offset = (random.randint(0, 0x7FFF) - seq) & 0xFFFF

    def _replay(self, first: int, ntp: int) -> None:
        """Send the cached keyframe and every packet after it, up to the newest."""
        binding = self.binding
        assert binding is not None and self.up.max_seq is not None
        count = ((self.up.max_seq - first) & 0xFFFF) + 1
        for offset in range(count):
            seq = (first + offset) & 0xFFFF
            packet = self.up.history.get(seq)
            if packet is None:
                continue  # lost upstream: the subscriber NACKs it like any gap
            saved = (packet.payload_type, packet.sequence_number, packet.ssrc)
            packet.payload_type, packet.ssrc = binding.payload_type, binding.ssrc
            packet.sequence_number = (seq + self.seq_offset) & 0xFFFF
            data = packet.serialize(binding.extensions)
            packet.payload_type, packet.sequence_number, packet.ssrc = saved
            if binding.send(data):
                self.counters.packets += 1
                self.counters.replayed += 1
                self.counters.bytes_out += len(packet.payload)
                binding.record_sent(ntp, packet.timestamp, len(packet.payload))

    async def on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.counters.nacks += 1
            for out_seq in packet.lost:
                self.retransmit(out_seq)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.counters.plis += 1
            self.up.counters.plis_from_subscribers += 1
            self.up.request_keyframe()

    def retransmit(self, out_seq: int) -> None:
        """Answer a subscriber's NACK from the publisher track's history (as RTX when negotiated)."""
        binding = self.binding
        if not self.started or binding is None:
            return
        packet = self.up.history.get((out_seq - self.seq_offset) & 0xFFFF)
        if packet is None:
            return
        if binding.rtx_payload_type is not None:
            resend = RtpPacket(
                payload_type=binding.rtx_payload_type,
                marker=packet.marker,
                sequence_number=self._rtx_seq,
                timestamp=packet.timestamp,
                ssrc=binding.rtx_ssrc,
                payload=pack("!H", out_seq) + packet.payload,
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        else:
            resend = RtpPacket(
                payload_type=binding.payload_type,
                marker=packet.marker,
                sequence_number=out_seq,
                timestamp=packet.timestamp,
                ssrc=binding.ssrc,
                payload=packet.payload,
            )
        resend.extensions = packet.extensions
        if binding.send(resend.serialize(binding.extensions)):
            self.counters.retransmitted += 1

    def detach(self) -> None:
        """Stop feeding this subscriber. Its sender stays on the subscriber's connection (the m-line goes
        inactive), so it must keep no way back here: through ``up`` it would hold the publisher's finished
        connection as long as the subscriber stays."""
        self.up.downs.pop(self.subscriber_sid, None)
        untap_sender(self.sender)
