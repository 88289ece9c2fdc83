"""One harness client: joins, times every stage, then watches cheaply until the run ends.

Stages (milliseconds from the moment the client starts fetching its token):

``token``          token minted (``--embedded``) or fetched (``POST /v1/tokens``, ``--url``)
``ws_open``        WebSocket open
``joined``         ``joined`` received
``offer``          the server's first offer received
``answer_sent``    our answer sent
``ice_connected``  ICE completed
``connected``      DTLS connected (the peer connection is ``connected``)
``first_rtp``      the first video RTP datagram received, or DTLS connected if later (watchers only)
``first_frame``    the first video frame decoded (watchers only)

A watcher decodes exactly one video frame (``await track.recv()``), then its
video receiver is switched to counting mode (``media.taps.tap_receiver``): no
more decoding, RTP-level accounting in :mod:`loadtest.quality`, NACK retries
and PLIs from the client side. Audio receivers are tapped from the start.
Publishers replay pre-encoded VP8 and Opus (:mod:`loadtest.source`, the
default) or encode a cheap synthetic pattern live (``--source live``), and
remember when each frame was captured, so subscribers' glass-to-glass latency
can be computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

from loadtest.config import RunConfig
from loadtest.quality import AudioQuality, LossRecovery, VideoQuality
from loadtest.scenarios import ClientSpec
from loadtest.source import CaptureClock, PreEncodedAudioTrack, PreEncodedVideoTrack
from loadtest.source import prepare as prepare_source
from media import taps

STAGES = ("token", "ws_open", "joined", "offer", "answer_sent", "ice_connected", "connected",
          "first_rtp", "first_frame")
PUBLISHER_STAGES = STAGES[:7]
STALL_CHECK_S = 0.1
CLOSE_TIMEOUT_S = 10.0
TOKEN_TTL_S = 3600
VIDEO_CLOCK = 90000
MAX_OBSERVED_SSRCS = 64


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
        self._image = np.zeros((height, width, 3), dtype=np.uint8)
        self._bar_x = 0
        self.clock = CaptureClock()

    async def recv(self) -> VideoFrame:
        if self._sender is None:
            self._sender = self._find_sender(self)
        self.clock.learn(self._sender)
        pts, time_base = await self.next_timestamp()
        image = self._image
        width = 16
        image[:, self._bar_x:self._bar_x + width] = 0
        self._bar_x = (self.count * 4) % max(self.width - width, 1)
        image[:, self._bar_x:self._bar_x + width] = 255
        self.count += 1
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        ticks = pts if time_base == Fraction(1, VIDEO_CLOCK) else int(pts * time_base * VIDEO_CLOCK)
        self.clock.record(ticks)
        return frame

    def captures(self) -> list[tuple[int, float]]:
        return self.clock.captures()


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
            self.impairment.inbound(data, lambda: (self._observe(data), deliver()))
        else:
            self.impairment.inbound(data, deliver)

    def outbound(self, data: bytes, send: Callable[[], None]) -> None:
        if self.impairment is None:
            send()
        else:
            self.impairment.outbound(data, send)

    def _observe(self, data: bytes) -> None:
        # RTP version 2, and not RTCP (RFC 5761: second byte 192-223).
        if len(data) >= 12 and data[0] & 0xC0 == 0x80 and not 192 <= data[1] <= 223:
            ssrc = int.from_bytes(data[8:12], "big")
            if ssrc not in self.first_seen and len(self.first_seen) < MAX_OBSERVED_SSRCS:
                self.first_seen[ssrc] = time.perf_counter()

    def first_rtp(self, ssrcs: list[int]) -> float | None:
        times = [self.first_seen[s] for s in ssrcs if s in self.first_seen]
        return min(times) if times else None


class TokenSource:
    """Mints join tokens in-process (``--embedded``) or asks the server's API (``--url``)."""

    def __init__(self, base_url: str, api_key: str, api_secret: str, mint_locally: bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.mint_locally = mint_locally
        self._settings: Any = None
        self._http: Any = None

    def prepare(self) -> None:
        """Build what minting or fetching needs before the clock of any join starts."""
        if not self.mint_locally and self._http is None:
            import httpx

            self._http = httpx.AsyncClient(base_url=self.base_url, auth=(self.api_key, self.api_secret),
                                           timeout=30.0)
        if self.mint_locally and self._settings is None:
            from vitrine.auth import mint_token
            from vitrine.config import Settings
            from vitrine.models import Role

            self._settings = Settings(api_key=self.api_key, api_secret=self.api_secret)
            mint_token(self._settings, room="warm-up", identity="warm-up", role=Role.VIEWER, ttl_s=60)  # lazy imports

    def mint(self, spec: ClientSpec) -> str:
        from vitrine.auth import mint_token
        from vitrine.models import Role

        self.prepare()
        return mint_token(self._settings, room=spec.room, identity=spec.identity, role=Role(spec.role),
                          ttl_s=TOKEN_TTL_S)

    async def get(self, spec: ClientSpec) -> str:
        if self.mint_locally:
            return self.mint(spec)
        self.prepare()
        response = await self._http.post("/v1/tokens", json={"room": spec.room, "identity": spec.identity,
                                                              "role": spec.role, "ttl_s": TOKEN_TTL_S})
        response.raise_for_status()
        return str(response.json()["token"])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class AgentContext:
    """What the agents of one worker process share."""

    def __init__(self, config: RunConfig, base_url: str, tokens: TokenSource,
                 emit: Callable[[str, str], None]) -> None:
        loop = asyncio.get_running_loop()
        self.config = config
        self.base_url = base_url
        self.tokens = tokens
        self.emit = emit
        self.phase_start: dict[int, asyncio.Future[float]] = {0: loop.create_future(), 1: loop.create_future()}
        self.hold_end: asyncio.Future[float] = loop.create_future()
        if config.source == "preencoded":  # encode the loops before the runner's go, not during a timed join
            prepare_source(config.video_width, config.video_height, config.fps, config.audio)

    def go(self, phase: int, start_at: float) -> None:
        future = self.phase_start.get(phase)
        if future is not None and not future.done():
            future.set_result(start_at)

    def set_hold_end(self, at: float) -> None:
        if not self.hold_end.done():
            self.hold_end.set_result(at)

    def abort(self, reason: str) -> None:
        for future in (*self.phase_start.values(), self.hold_end):
            if not future.done():
                future.set_exception(RuntimeError(reason))


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
        return f"join refused: {code.group(1)}" if code else ("join timed out" if "timed out" in text
                                                              else "join refused")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {text[:120]}"


class Agent:
    def __init__(self, spec: ClientSpec, ctx: AgentContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.config = ctx.config
        self.client: Any = None
        self.video: PatternVideoTrack | PreEncodedVideoTrack | None = None
        self.observer: LinkObserver | None = None
        self.stages: dict[str, float | None] = dict.fromkeys(STAGES)
        self.t0 = 0.0
        self.recovery: LossRecovery | None = None
        self.quality: VideoQuality | None = None
        self.audio: list[AudioQuality] = []
        self.window_start: float | None = None
        self.remote_participant: str | None = None
        self.failure: dict[str, str] | None = None

    # -- helpers -----------------------------------------------------------------

    def _mark(self, stage: str, at: float | None) -> None:
        if at is not None and self.stages.get(stage) is None:
            self.stages[stage] = round((at - self.t0) * 1000, 2)

    def _remaining(self) -> float:
        return max(0.001, self.t0 + self.config.join_timeout_s - time.perf_counter())

    def _receiver_of(self, track: Any) -> Any:
        return next(t.receiver for t in self.client.pc.getTransceivers() if t.receiver.track is track)

    def _find_sender(self, track: Any) -> Any:
        if self.client is None:
            return None
        return next((s for s in self.client.pc.getSenders() if s.track is track), None)

    def _on_track(self, track: Any) -> None:
        if track.kind != "audio":
            return
        audio = AudioQuality()
        self.audio.append(audio)

        async def count(packet: Any, codec: Any) -> None:
            audio.on_packet(packet.sequence_number, packet.payload)

        taps.tap_receiver(self._receiver_of(track), count)

    def _on_connection_state(self) -> None:
        if self.client is not None and self.client.pc.connectionState == "connected":
            self.ctx.emit(self.spec.id, "connected")

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
            stage = exc.stage if isinstance(exc, JoinFailure) else next(
                (s for s in self._expected() if self.stages.get(s) is None), "first_frame")
            self.failure = {"stage": stage, "reason": _reason(exc, stage)}
            self.ctx.emit(spec.id, "failed")
            await self._close()
            return self._record(None)
        media: dict[str, Any] | None = None
        try:
            await self._hold()
        finally:
            media = self._finish_media()
            state = self.client.pc.connectionState
            if self.failure is None and (state != "connected" or self.client.leave_notice is not None):
                self.failure = {"stage": "hold", "reason": f"connection {state} during the hold"
                                if state != "connected" else "the server ended the session"}
                self.ctx.emit(spec.id, "failed")
            await self._close()
        return self._record(media)

    def _expected(self) -> tuple[str, ...]:
        return STAGES if self.spec.watch else PUBLISHER_STAGES

    async def _join(self) -> None:
        from vitrine.client import JoinTimeline, VitrineClient

        spec, config = self.spec, self.config
        self.t0 = time.perf_counter()
        try:
            if self.ctx.tokens.mint_locally:  # no await: the token's time is the minting, not the loop's queue
                token = self.ctx.tokens.mint(spec)
            else:
                token = await asyncio.wait_for(self.ctx.tokens.get(spec), config.join_timeout_s)
        except Exception as exc:
            raise JoinFailure("token", f"token: {_reason(exc, 'token')}") from exc
        self._mark("token", time.perf_counter())
        tracks: list[Any] = []
        if spec.publish and config.source == "preencoded":  # PLIs/FIRs reach the track through its sender
            self.video = PreEncodedVideoTrack(config.video_width, config.video_height, config.fps,
                                              self._find_sender)
            tracks.append(self.video)
            if config.audio:
                tracks.append(PreEncodedAudioTrack())
        elif spec.publish:
            self.video = PatternVideoTrack(config.video_width, config.video_height, self._find_sender)
            tracks.append(self.video)
            if config.audio:
                tracks.append(AudioStreamTrack())
        self.observer = LinkObserver(config.impairment.link(spec.index))
        client = self.client = VitrineClient(self.ctx.base_url, token, tracks=tracks, name=spec.identity,
                                             datagram_hook=self.observer)
        client.timeline = JoinTimeline(start=self.t0)
        client.pc.on("track", self._on_track)
        client.pc.on("connectionstatechange", self._on_connection_state)
        try:
            await client.connect(timeout=self._remaining())
            self.ctx.emit(spec.id, "joined")
            if spec.watch:
                try:
                    remote = await client.next_remote_track("video", timeout=self._remaining())
                except TimeoutError:
                    raise JoinFailure("first_rtp", "no video track was offered in time") from None
                self.remote_participant = remote.info.participant_sid if remote.info else None
                receiver = self._receiver_of(remote.track)
                try:
                    await asyncio.wait_for(remote.track.recv(), self._remaining())
                except TimeoutError:
                    if client.pc.connectionState != "connected":
                        raise JoinFailure("connected", f"peer connection still {client.pc.connectionState}") from None
                    if not receiver.getSynchronizationSources():
                        raise JoinFailure("first_rtp", "connected, but no video RTP arrived") from None
                    raise JoinFailure("first_frame", "video RTP arrived, but no frame was decoded") from None
                first_frame = time.perf_counter()
                ssrcs = [s.source for s in receiver.getSynchronizationSources()]
                first_rtp = self.observer.first_rtp(ssrcs)
                if first_rtp is not None and client.timeline.connected is not None:
                    first_rtp = max(first_rtp, client.timeline.connected)  # SRTP is unusable before DTLS
                self._mark("first_rtp", first_rtp)
                self._mark("first_frame", first_frame)
                self.observer.watching = False
                self._count(receiver)
                self.ctx.emit(spec.id, "first_frame")
            if client.pc.connectionState != "connected":
                await client.wait_connected(self._remaining())
        finally:
            self._copy_timeline()
        missing = [s for s in self._expected() if self.stages.get(s) is None]
        if missing:
            raise JoinFailure(missing[0], f"stage {missing[0]} was never reached")

    def _copy_timeline(self) -> None:
        timeline = self.client.timeline
        for stage in ("ws_open", "joined", "offer", "answer_sent", "ice_connected", "connected"):
            self._mark(stage, getattr(timeline, stage))

    def _count(self, receiver: Any) -> None:
        """Switch the video receiver to counting mode: no more decoding from here on."""
        quality = self.quality = VideoQuality(nominal_fps=self.config.fps)

        async def nack(ssrc: int, seqs: list[int]) -> None:
            await taps.send_nack(receiver, ssrc, seqs)

        async def pli(ssrc: int) -> None:
            await taps.send_pli(receiver, ssrc)

        recovery = self.recovery = LossRecovery(quality, nack, pli)
        codec_known = False

        async def count(packet: Any, codec: Any) -> None:
            nonlocal codec_known
            if not codec_known:
                quality.set_codec(codec.mimeType, codec.clockRate)
                codec_known = True
            await recovery.on_rtp(packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload,
                                  packet.ssrc)

        taps.tap_receiver(receiver, count)
        self.window_start = time.monotonic()

    async def _hold(self) -> None:
        """Stay in the call until the run's hold ends, running the stall watchdog (VitrineClient pings)."""
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
                    await self.recovery.check_stall(now)
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
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(), CLOSE_TIMEOUT_S)

    def _record(self, media: dict[str, Any] | None) -> dict[str, Any]:
        spec = self.spec
        ok = self.failure is None
        join_stage = "first_frame" if spec.watch else "connected"
        record: dict[str, Any] = {
            "id": spec.id, "role": spec.role, "room": spec.room, "identity": spec.identity,
            "publishes": spec.publish, "watches": spec.watch, "phase": spec.phase,
            "ok": ok, "failure": self.failure,
            "stages_ms": self.stages,
            "join_ms": self.stages.get(join_stage) if self.failure is None or self.failure["stage"] == "hold"
            else None,
            "participant_sid": (self.client.joined or {}).get("participant", {}).get("sid")
            if self.client is not None else None,
            "remote_participant_sid": self.remote_participant,
            "media": media,
            "captures": [list(c) for c in self.video.captures()] if self.video is not None else [],
            "impairment": None,
        }
        impairment = self.observer.impairment if self.observer is not None else None
        if impairment is not None:
            record["impairment"] = {
                direction: {"packets": c.packets, "dropped": c.dropped, "queue_drops": c.queue_drops,
                            "delayed": c.delayed}
                for direction, c in impairment.counters.items()}
        return record
