"""What every harness client does, whatever its transport: time each join stage, watch cheaply, report.

A client (``Agent``) fetches its token(s), joins through its transport
(``loadtest.ws_agent``: the WebSocket protocol; ``loadtest.whip_agent``: WHIP
to publish and WHEP to watch), and, if it watches, decodes exactly one video
frame (``await track.recv()``). Its video receiver is then switched to
counting mode (``media.taps.tap_receiver``): no more decoding, RTP-level
accounting in :mod:`loadtest.quality`, NACK retries and PLIs from the client
side. Audio receivers are tapped from the start. Publishers replay
pre-encoded VP8 and Opus (:mod:`loadtest.source`, the default) or encode a
cheap synthetic pattern live (``--source live``), and remember when each frame
was captured, so subscribers' glass-to-glass latency can be computed.

Stages are milliseconds from the moment the client starts fetching its token;
``STAGES`` lists them per transport, and docs/loadtest.md says what each means.
The last two (``first_rtp``, ``first_frame``) exist for watchers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import AudioStreamTrack

from loadtest.context import AgentContext
from loadtest.quality import AudioQuality, LossRecovery, VideoQuality
from loadtest.scenarios import ClientSpec
from loadtest.source import PatternVideoTrack, PreEncodedAudioTrack, PreEncodedVideoTrack
from media import taps
from vitrine.core.tasks import TaskSet

STAGES: dict[str, tuple[str, ...]] = {
    "ws": (
        "token",
        "ws_open",
        "joined",
        "offer",
        "answer_sent",
        "ice_connected",
        "connected",
        "first_rtp",
        "first_frame",
    ),
    "whip": ("token", "offer", "http_answer", "ice_connected", "connected", "first_rtp", "first_frame"),
}
WATCHER_STAGES = ("first_rtp", "first_frame")
STALL_CHECK_S = 0.1
CLOSE_TIMEOUT_S = 10.0
MAX_OBSERVED_SSRCS = 64


def expected_stages(transport: str, watches: bool) -> tuple[str, ...]:
    """The stages a client of this transport must reach to have joined."""
    stages = STAGES[transport]
    return stages if watches else tuple(s for s in stages if s not in WATCHER_STAGES)


class LinkObserver:
    """The datagram hook of every harness client.

    It applies the client's impairment (if any) first, then notes the arrival
    of the first RTP datagram of each SSRC (RTP headers are not encrypted by
    SRTP). After the first frame it stops observing and only impairs.
    """

    def __init__(self, impairment: Any | None) -> None:
        self.impairment = impairment
        self.watching = True
        self.first_seen: dict[int, float] = {}

    def inbound(self, data: bytes, deliver: Callable[[], None]) -> None:
        if self.impairment is None:
            if self.watching:
                self._observe(data)
            deliver()
        elif self.watching:
            self.impairment.inbound(data, lambda: self._observe_and_deliver(data, deliver))
        else:
            self.impairment.inbound(data, deliver)

    def outbound(self, data: bytes, send: Callable[[], None]) -> None:
        if self.impairment is None:
            send()
        else:
            self.impairment.outbound(data, send)

    def _observe_and_deliver(self, data: bytes, deliver: Callable[[], None]) -> None:
        self._observe(data)
        deliver()

    def _observe(self, data: bytes) -> None:
        # RTP version 2, and not RTCP (RFC 5761: second byte 192-223).
        if len(data) >= 12 and data[0] & 0xC0 == 0x80 and not 192 <= data[1] <= 223:
            ssrc = int.from_bytes(data[8:12], "big")
            if ssrc not in self.first_seen and len(self.first_seen) < MAX_OBSERVED_SSRCS:
                self.first_seen[ssrc] = time.perf_counter()

    def first_rtp(self, ssrcs: list[int]) -> float | None:
        times = [self.first_seen[s] for s in ssrcs if s in self.first_seen]
        return min(times) if times else None


class JoinFailure(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def _reason(exc: BaseException, stage: str) -> str:
    """A short, aggregatable reason for a failure."""
    if isinstance(exc, JoinFailure):
        return exc.reason
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"timeout waiting for {stage}"
    text = str(exc)
    if "join failed" in text:
        code = re.search(r"'code': '([A-Za-z_]+)'", text)
        return (
            f"join refused: {code.group(1)}" if code else ("join timed out" if "timed out" in text else "join refused")
        )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {text[:120]}"


def receiver_of(pc: Any, track: Any) -> Any:
    return next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)


class Agent(ABC):
    """One harness client. A transport subclass provides ``_connect`` and the hooks below it."""

    transport: str  # a key of STAGES

    def __init__(self, spec: ClientSpec, ctx: AgentContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.config = ctx.config
        self.video: PatternVideoTrack | PreEncodedVideoTrack | None = None
        self.observer: LinkObserver | None = None
        self.stages: dict[str, float | None] = dict.fromkeys(STAGES[self.transport])
        self.t0 = 0.0
        self.recovery: LossRecovery | None = None
        self.quality: VideoQuality | None = None
        self.audio: list[AudioQuality] = []
        self.window_start: float | None = None
        self.remote_participant: str | None = None
        self.failure: dict[str, str] | None = None
        self._feedback = TaskSet()  # NACKs and PLIs in flight: the (synchronous) receive path never waits

    # -- what a transport provides ------------------------------------------------------

    def _identities(self) -> list[str]:
        """The identities the client needs a token for, in the order ``_connect`` takes them."""
        return [self.spec.identity]

    @abstractmethod
    async def _connect(self, tokens: list[str], tracks: list[Any]) -> None:
        """Join and publish ``tracks``; for a watcher, end with ``_first_frame``. Marks its own stages."""

    @abstractmethod
    def _peer_connections(self) -> list[Any]:
        """The client's peer connections so far (none before it connects)."""

    @abstractmethod
    def _hold_problem(self) -> str | None:
        """Why the client is no longer in the call at the end of the hold, if it is not."""

    @abstractmethod
    def _participant_sid(self) -> str | None:
        """The server's sid of the session that publishes (subscribers' glass-to-glass is matched to it)."""

    def _transport_record(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    async def _disconnect(self) -> None:
        """Leave and close every peer connection (``_close`` bounds it in time and swallows errors)."""

    # -- helpers -----------------------------------------------------------------

    def _mark(self, stage: str, at: float | None) -> None:
        if at is not None and self.stages.get(stage) is None:
            self.stages[stage] = round((at - self.t0) * 1000, 2)

    def _remaining(self) -> float:
        return max(0.001, self.t0 + self.config.join_timeout_s - time.perf_counter())

    def _find_sender(self, track: Any) -> Any:
        return next((s for pc in self._peer_connections() for s in pc.getSenders() if s.track is track), None)

    def _receive_on(self, pc: Any) -> None:
        """Tap the audio ``pc`` receives from the start, and report when it connects."""

        def on_track(track: Any) -> None:
            if track.kind != "audio":
                return
            audio = AudioQuality()
            self.audio.append(audio)

            def count(packet: Any, codec: Any) -> None:
                audio.on_packet(packet.sequence_number, packet.payload)

            receiver = receiver_of(pc, track)
            taps.tap_receiver_sync(receiver, count)
            taps.deliver_rtp_now(receiver.transport)

        def on_connection_state() -> None:
            if pc.connectionState == "connected":
                self.ctx.emit(self.spec.id, "connected")

        pc.on("track", on_track)
        pc.on("connectionstatechange", on_connection_state)

    def _local_tracks(self) -> list[Any]:
        config = self.config
        if not self.spec.publish:
            return []
        tracks: list[Any] = []
        if config.source == "preencoded":  # PLIs/FIRs reach the track through its sender
            self.video = PreEncodedVideoTrack(config.video_width, config.video_height, config.fps, self._find_sender)
            tracks.append(self.video)
            if config.audio:
                tracks.append(PreEncodedAudioTrack())
        else:
            self.video = PatternVideoTrack(config.video_width, config.video_height, self._find_sender)
            tracks.append(self.video)
            if config.audio:
                tracks.append(AudioStreamTrack())
        return tracks

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        try:
            start_at = await self.ctx.phase_start[spec.phase] + spec.offset_s
        except Exception as exc:
            self.failure = {"stage": "start", "reason": f"aborted: {exc}"}
            return self._record(None)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        self.ctx.emit(spec.id, "start")
        try:
            await self._join()
            self.ctx.emit(spec.id, "ready")
        except Exception as exc:
            stage = (
                exc.stage
                if isinstance(exc, JoinFailure)
                else next((s for s in self._expected() if self.stages.get(s) is None), "first_frame")
            )
            self.failure = {"stage": stage, "reason": _reason(exc, stage)}
            self.ctx.emit(spec.id, "failed")
            await self._close()
            return self._record(None)
        media: dict[str, Any] | None = None
        try:
            await self._hold()
        finally:
            media = self._finish_media()
            problem = self._hold_problem()
            if self.failure is None and problem is not None:
                self.failure = {"stage": "hold", "reason": problem}
                self.ctx.emit(spec.id, "failed")
            await self._close()
        return self._record(media)

    def _expected(self) -> tuple[str, ...]:
        return expected_stages(self.transport, self.spec.watch)

    async def _join(self) -> None:
        self.t0 = time.perf_counter()
        tokens = await self._tokens(self._identities())
        self._mark("token", time.perf_counter())
        self.observer = LinkObserver(self.config.impairment.link(self.spec.index))
        await self._connect(tokens, self._local_tracks())
        missing = [s for s in self._expected() if self.stages.get(s) is None]
        if missing:
            raise JoinFailure(missing[0], f"stage {missing[0]} was never reached")

    async def _tokens(self, identities: list[str]) -> list[str]:
        source = self.ctx.tokens
        try:
            if source.mint_locally:  # no await: the token's time is the minting, not the loop's queue
                return [source.mint(self.spec, identity) for identity in identities]
            return list(
                await asyncio.wait_for(
                    asyncio.gather(*(source.get(self.spec, i) for i in identities)), self.config.join_timeout_s
                )
            )
        except Exception as exc:
            raise JoinFailure("token", f"token: {_reason(exc, 'token')}") from exc

    async def _first_frame(self, track: Any, receiver: Any, pc: Any, connected_at: Callable[[], float | None]) -> None:
        """Decode the first video frame, mark ``first_rtp`` and ``first_frame``, then only count."""
        assert self.observer is not None
        try:
            await asyncio.wait_for(track.recv(), self._remaining())
        except TimeoutError:
            if pc.connectionState != "connected":
                raise JoinFailure("connected", f"peer connection still {pc.connectionState}") from None
            if not receiver.getSynchronizationSources():
                raise JoinFailure("first_rtp", "connected, but no video RTP arrived") from None
            raise JoinFailure("first_frame", "video RTP arrived, but no frame was decoded") from None
        first_frame = time.perf_counter()
        ssrcs = [s.source for s in receiver.getSynchronizationSources()]
        first_rtp = self.observer.first_rtp(ssrcs)
        connected = connected_at()
        if first_rtp is not None and connected is not None:
            first_rtp = max(first_rtp, connected)  # SRTP is unusable before DTLS
        self._mark("first_rtp", first_rtp)
        self._mark("first_frame", first_frame)
        self.observer.watching = False
        self._count(receiver)
        self.ctx.emit(self.spec.id, "first_frame")

    def _count(self, receiver: Any) -> None:
        """Switch the video receiver to counting mode: no more decoding from here on."""
        quality = self.quality = VideoQuality(nominal_fps=self.config.fps)

        def nack(ssrc: int, seqs: list[int]) -> None:
            self._feedback.spawn(taps.send_nack(receiver, ssrc, seqs))

        def pli(ssrc: int) -> None:
            self._feedback.spawn(taps.send_pli(receiver, ssrc))

        recovery = self.recovery = LossRecovery(quality, nack, pli)
        codec_known = False

        def count(packet: Any, codec: Any) -> None:
            nonlocal codec_known
            if not codec_known:
                quality.set_codec(codec.mimeType, codec.clockRate)
                codec_known = True
            recovery.on_rtp(packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload, packet.ssrc)

        taps.tap_receiver_sync(receiver, count)
        taps.deliver_rtp_now(receiver.transport)
        self.window_start = time.monotonic()

    async def _hold(self) -> None:
        """Stay in the call until the run's hold ends, running the stall watchdog."""
        try:
            hold_end = await self.ctx.hold_end
        except Exception as exc:
            self.failure = {"stage": "hold", "reason": f"aborted: {exc}"}
            return
        while True:
            now = time.monotonic()
            if now >= hold_end:
                return
            if self.recovery is not None:
                with contextlib.suppress(Exception):
                    self.recovery.check_stall(now)
            await asyncio.sleep(min(STALL_CHECK_S, max(0.0, hold_end - now)))

    def _finish_media(self) -> dict[str, Any] | None:
        if self.quality is None or self.recovery is None or self.window_start is None:
            return None
        end = time.monotonic()
        media = self.quality.finish(self.window_start, end)
        media.update(self.recovery.counters())
        media["g2g_samples"] = [list(s) for s in self.quality.g2g]
        window = max(end - self.window_start, 1e-9)
        audio = [a.finish(window) for a in self.audio]
        media["audio"] = audio[0] if audio else None
        return media

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._disconnect(), CLOSE_TIMEOUT_S)

    def _record(self, media: dict[str, Any] | None) -> dict[str, Any]:
        spec = self.spec
        ok = self.failure is None
        join_stage = "first_frame" if spec.watch else "connected"
        record: dict[str, Any] = {
            "id": spec.id,
            "role": spec.role,
            "room": spec.room,
            "identity": spec.identity,
            "publishes": spec.publish,
            "watches": spec.watch,
            "phase": spec.phase,
            "ok": ok,
            "failure": self.failure,
            "stages_ms": self.stages,
            "join_ms": self.stages.get(join_stage) if self.failure is None or self.failure["stage"] == "hold" else None,
            "participant_sid": self._participant_sid(),
            "remote_participant_sid": self.remote_participant,
            "media": media,
            "captures": [list(c) for c in self.video.captures()] if self.video is not None else [],
            "impairment": None,
            **self._transport_record(),
        }
        impairment = self.observer.impairment if self.observer is not None else None
        if impairment is not None:
            record["impairment"] = {
                direction: {
                    "packets": c.packets,
                    "dropped": c.dropped,
                    "queue_drops": c.queue_drops,
                    "delayed": c.delayed,
                }
                for direction, c in impairment.counters.items()
            }
        return record
