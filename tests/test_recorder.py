"""Show recording end to end: real aiortc publishers, the real server and worker, files checked with PyAV.

The worker only remuxes: every test also asserts that it never decoded nor encoded anything. The tests
decode a few frames of each file themselves, to prove it plays.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import RtpPacket
from pydantic import ValidationError

from loadtest.client import VitrineClient
from loadtest.impair import Impairment, LinkImpairment
from media.recorder import is_keyframe, nal_units, video_size
from media.taps.frames import jitter_add
from media.worker import MediaWorker
from tests.media_helpers import MovingPatternTrack, av_tracks
from tests.servers import RunningServer, embedded_server
from vitrine.core.errors import ErrorCode
from vitrine.core.models import Role, Room, RoomKind
from vitrine.core.recording_parts import tagged_start
from vitrine.core.wire.rpc import (
    RecordCommand,
    Recorded,
    RecordingInfo,
    Refused,
    WorkerReply,
    command_adapter,
    expect,
)

TIMEOUT_S = 90.0  # generous: a loaded 2-core machine encodes the publishers' media in this process too


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with embedded_server(recordings_dir=str(tmp_path / "recordings")) as running:
        yield running


def worker_of(server: RunningServer) -> MediaWorker:
    assert server.runtime is not None and server.runtime.media_worker is not None
    return server.runtime.media_worker


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def published(server: RunningServer, room: str, count: int) -> None:
    worker = worker_of(server)
    await wait_for(lambda: room in worker.rooms and len(worker.rooms[room].ups) == count, f"{count} tracks in {room}")


async def record(server: RunningServer, room: str, action: str, recording_id: str) -> WorkerReply:
    return await worker_of(server).handle(RecordCommand(room=room, action=action, recording_id=recording_id))


def refusal(reply: WorkerReply) -> Refused:
    assert isinstance(reply, Refused), reply
    return reply


async def recorded(server: RunningServer, room: str, video: int, audio: int) -> RecordingInfo:
    recording = worker_of(server).recordings[room]
    await wait_for(
        lambda: recording.info().video_frames >= video and recording.info().audio_frames >= audio,
        f"{video} video and {audio} audio frames recorded in {room}",
    )
    return recording.info()


def assert_never_transcoded(server: RunningServer) -> None:
    stats = worker_of(server).media_stats()
    assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0


async def whip_publish(
    server: RunningServer, room: str, identity: str, video_codec: str | None = None
) -> tuple[RTCPeerConnection, str, str]:
    """Publish like OBS: a WHIP offer, optionally forcing the video codec (OBS sends H.264)."""
    token = server.token(room, identity, Role.HOST)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver(MovingPatternTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    if video_codec is not None:
        video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in (video_codec, "video/rtx")]
        )
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/whip/{room}",
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"], token


class Demuxed:
    """A recorded file as a player sees it: streams, packets in order, and a few decoded frames."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        self.head = path.read_bytes()[:4096]
        with av.open(str(path)) as container:
            self.started_at_ms = tagged_start(container.metadata)  # the part's start, as a crash leaves it too
            self.codecs = {s.type: s.codec_context.name for s in container.streams}
            self.dimensions = [(s.codec_context.width, s.codec_context.height) for s in container.streams.video]
            self.packets: dict[str, list[tuple[int, int, bool, Fraction]]] = {kind: [] for kind in self.codecs}
            for packet in container.demux():
                if packet.dts is not None:
                    self.packets[packet.stream.type].append(
                        (packet.pts, packet.dts, packet.is_keyframe, packet.time_base)
                    )
        with av.open(str(path)) as container:
            self.decoded = {kind: 0 for kind in self.codecs}
            self.decode_errors = 0
            for packet in container.demux():
                try:
                    self.decoded[packet.stream.type] += len(packet.decode())
                except av.FFmpegError:
                    self.decode_errors += 1

    def seconds(self, kind: str) -> list[float]:
        return [float(pts * time_base) for pts, _, _, time_base in self.packets[kind]]

    def check_timeline(self, strict: bool) -> None:
        for kind, packets in self.packets.items():
            dts = [d for _, d, _, _ in packets]
            steps = [b - a for a, b in zip(dts, dts[1:])]
            assert all(s > 0 if strict else s >= 0 for s in steps), f"{kind} DTS not monotonic"
        if "video" in self.packets:
            assert self.packets["video"][0][2], "the file does not start on a video keyframe"
            assert self.seconds("video")[0] == 0.0


def snapshot(part: Path, copy: Path) -> Demuxed:
    """The in-progress file as a crash (SIGKILL, power loss) would leave it right now."""
    shutil.copyfile(part, copy)
    return Demuxed(copy)


# -- bitstream helpers and the JitterBuffer contract (media/taps/frames.py) -----------------------------


def test_jitter_buffer_reassembles_depayloaded_frames() -> None:
    buffer = JitterBuffer(64, is_video=True)
    frames = []
    for seq, (timestamp, data) in enumerate([(1000, b"ab"), (1000, b"cd"), (4000, b"ef"), (7000, b"gh")]):
        lost, frame = jitter_add(buffer, RtpPacket(sequence_number=65534 + seq & 0xFFFF, timestamp=timestamp), data)
        assert not lost
        if frame is not None:
            frames.append((frame.timestamp, frame.data))
    assert frames == [(1000, b"abcd"), (4000, b"ef")]


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (854, 480)])
def test_h264_keyframe_size_is_read_from_the_sps(size: tuple[int, int]) -> None:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "high"}
    frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24").reformat(
        format="yuv420p"
    )
    frame.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(frame))
    assert {unit[0] & 0x1F for unit in nal_units(data)} >= {5, 7, 8}
    assert is_keyframe("video/h264", data)
    assert not is_keyframe("video/h264", data[5:])  # a frame that lost its start is no keyframe
    assert video_size("video/h264", data) == size


# -- end to end -------------------------------------------------------------------------------------------


async def test_vp8_show_is_recorded_to_a_playable_webm(server: RunningServer, tmp_path: Path) -> None:
    host = VitrineClient(server.url, server.token("show-vp8", "host", Role.HOST), tracks=av_tracks())
    try:
        await host.connect()
        await published(server, "show-vp8", 2)
        started = expect(await record(server, "show-vp8", "start", "vp8-take-1"), Recorded)
        assert started.recording is not None
        assert (started.recording.path, started.recording.container) == ("vp8-take-1.webm", "webm")
        await recorded(server, "show-vp8", video=45, audio=75)
        crashed = snapshot(tmp_path / "recordings" / "vp8-take-1.webm.part", tmp_path / "crashed.webm")
        expect(
            await record(server, "show-vp8", "start", "vp8-take-1"), Recorded
        )  # starting the same recording again is a no-op
        assert refusal(await record(server, "show-vp8", "start", "vp8-take-2")).error == ErrorCode.RECORDING_EXISTS
        stopped = expect(await record(server, "show-vp8", "stop", "vp8-take-1"), Recorded)
        assert_never_transcoded(server)
        assert worker_of(server).media_stats()["recordings"] == 0
    finally:
        await host.close()
    info = stopped.recording
    assert info is not None and info.finished and info.error is None
    assert info.video_frames >= 45 and info.audio_frames >= 75 and info.duration_ms >= 1000
    directory = tmp_path / "recordings"
    assert sorted(p.name for p in directory.iterdir()) == ["vp8-take-1.webm"]  # no .part left
    assert info.bytes == (directory / info.path).stat().st_size
    demuxed = Demuxed(directory / info.path)
    assert demuxed.codecs == {"video": "vp8", "audio": "opus"}
    assert demuxed.dimensions == [(320, 240)]
    assert len(demuxed.packets["video"]) >= 45 and len(demuxed.packets["audio"]) >= 75
    demuxed.check_timeline(strict=False)  # WebM counts in milliseconds: equal neighbours are allowed
    assert abs(demuxed.seconds("video")[-1] - demuxed.seconds("audio")[-1]) < 1.5, "audio and video drifted apart"
    assert demuxed.decode_errors == 0
    assert demuxed.decoded["video"] >= 45 and demuxed.decoded["audio"] >= 75
    assert crashed.codecs == {"video": "vp8", "audio": "opus"} and crashed.decode_errors == 0
    assert crashed.decoded["video"] >= 15 and crashed.decoded["audio"] >= 25
    assert demuxed.started_at_ms == crashed.started_at_ms == info.started_at_ms and info.part == 0


async def test_h264_from_whip_is_recorded_to_fragmented_mp4(server: RunningServer, tmp_path: Path) -> None:
    publisher, _, _ = await whip_publish(server, "show-h264", "obs", video_codec="video/H264")
    try:
        await published(server, "show-h264", 2)
        ups = worker_of(server).rooms["show-h264"].ups.values()
        assert {u.codec.mimeType.lower() for u in ups} == {"video/h264", "audio/opus"}
        expect(await record(server, "show-h264", "start", "h264-take"), Recorded)
        await recorded(server, "show-h264", video=45, audio=75)
        crashed = snapshot(tmp_path / "recordings" / "h264-take.mp4.part", tmp_path / "crashed.mp4")
        stopped = expect(await record(server, "show-h264", "stop", "h264-take"), Recorded)
        assert_never_transcoded(server)
    finally:
        await publisher.close()
    info = stopped.recording
    assert info is not None and (info.path, info.container) == ("h264-take.mp4", "mp4")
    demuxed = Demuxed(tmp_path / "recordings" / info.path)
    assert demuxed.codecs == {"video": "h264", "audio": "opus"}
    assert demuxed.dimensions == [(320, 240)]
    assert b"mvex" in demuxed.head and b"moof" in demuxed.head, "not a fragmented MP4"
    demuxed.check_timeline(strict=True)
    assert demuxed.decode_errors == 0
    assert demuxed.decoded["video"] >= 40 and demuxed.decoded["audio"] >= 75
    # What a crash would have left: the fragments written so far play.
    assert crashed.codecs == {"video": "h264", "audio": "opus"} and crashed.decode_errors == 0
    assert crashed.decoded["video"] >= 15 and crashed.decoded["audio"] >= 25
    assert demuxed.started_at_ms == crashed.started_at_ms == info.started_at_ms


async def test_obs_reconnecting_continues_the_same_file(server: RunningServer, tmp_path: Path) -> None:
    worker = worker_of(server)
    first, resource, token = await whip_publish(server, "show-again", "obs")
    second = None
    try:
        await published(server, "show-again", 2)
        expect(await record(server, "show-again", "start", "again"), Recorded)
        before = await recorded(server, "show-again", video=30, audio=50)
        async with httpx.AsyncClient(base_url=server.url) as http:
            gone = await http.delete(resource, headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 200
        await first.close()
        # The room emptied and left this worker; its recording waits for the next publisher.
        await wait_for(lambda: "show-again" not in worker.rooms, "the empty room to leave the worker")
        assert "show-again" in worker.recordings
        second, _, _ = await whip_publish(server, "show-again", "obs")
        await published(server, "show-again", 2)
        after = await recorded(server, "show-again", video=before.video_frames + 30, audio=before.audio_frames + 50)
        stopped = expect(await record(server, "show-again", "stop", "again"), Recorded)
        assert_never_transcoded(server)
    finally:
        for pc in (first, second):
            if pc is not None:
                await pc.close()
    info = stopped.recording
    assert info is not None and info.video_frames >= after.video_frames
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == ["again.webm"]
    demuxed = Demuxed(tmp_path / "recordings" / "again.webm")
    demuxed.check_timeline(strict=False)
    keyframes = [s for s, (_, _, key, _) in zip(demuxed.seconds("video"), demuxed.packets["video"]) if key]
    assert len(keyframes) >= 2, "the second publisher's video must start on its own keyframe"
    assert demuxed.decode_errors == 0 and demuxed.decoded["video"] == len(demuxed.packets["video"])


async def test_audio_only_room_records_an_audio_only_webm(server: RunningServer, tmp_path: Path) -> None:
    host = VitrineClient(server.url, server.token("radio", "host", Role.HOST), tracks=[AudioStreamTrack()])
    try:
        await host.connect()
        await published(server, "radio", 1)
        expect(await record(server, "radio", "start", "radio-1"), Recorded)
        await recorded(server, "radio", video=0, audio=100)
        stopped = expect(await record(server, "radio", "stop", "radio-1"), Recorded)
        assert_never_transcoded(server)
    finally:
        await host.close()
    assert stopped.recording is not None and stopped.recording.video_frames == 0
    demuxed = Demuxed(tmp_path / "recordings" / "radio-1.webm")
    assert demuxed.codecs == {"audio": "opus"}
    demuxed.check_timeline(strict=False)
    assert demuxed.decode_errors == 0 and demuxed.decoded["audio"] >= 100


async def test_a_full_queue_drops_and_recovers_on_a_keyframe(server: RunningServer, tmp_path: Path) -> None:
    host = VitrineClient(server.url, server.token("busy", "host", Role.HOST), tracks=av_tracks())
    try:
        await host.connect()
        await published(server, "busy", 2)
        expect(await record(server, "busy", "start", "busy-1"), Recorded)
        before = await recorded(server, "busy", video=20, audio=30)
        recording = worker_of(server).recordings["busy"]
        packets_in = worker_of(server).media_stats()["packets_in"]
        recording.max_queue = 0  # the writer cannot keep up: every packet overflows
        await wait_for(lambda: recording.dropped_packets >= 100, "packets to be dropped")
        assert worker_of(server).media_stats()["packets_in"] > packets_in, "forwarding must go on"
        assert worker_of(server).media_stats()["recording_dropped_packets"] >= 100
        recording.max_queue = 4096
        resumed = await recorded(server, "busy", video=before.video_frames + 30, audio=before.audio_frames + 50)
        # A sink that raises (a recorder bug) is detached and counted; forwarding and recording go on.
        video = next(u for u in worker_of(server).rooms["busy"].ups.values() if u.is_video)

        def broken(packet: RtpPacket, keyframe: bool) -> None:
            raise RuntimeError("a recorder bug")

        video.sinks.append(broken)
        await wait_for(lambda: broken not in video.sinks, "the failing sink to be detached")
        assert video.counters.sink_errors == 1
        await recorded(server, "busy", video=resumed.video_frames + 15, audio=0)
        stopped = expect(await record(server, "busy", "stop", "busy-1"), Recorded)
    finally:
        await host.close()
    assert stopped.recording is not None and stopped.recording.dropped_packets >= 100
    demuxed = Demuxed(tmp_path / "recordings" / "busy-1.webm")
    demuxed.check_timeline(strict=False)
    assert sum(key for _, _, key, _ in demuxed.packets["video"]) >= 2  # resumed on a new keyframe
    assert demuxed.decode_errors == 0 and demuxed.decoded["video"] == len(demuxed.packets["video"])


async def test_a_lossy_publisher_link_still_records_a_clean_file(server: RunningServer, tmp_path: Path) -> None:
    """5 % loss and reordering upstream: NACKed video is rebuilt, what is lost waits for a keyframe."""
    link = LinkImpairment(up=Impairment(loss=0.05, delay_ms=20, jitter_ms=15), seed=7)
    host = VitrineClient(server.url, server.token("lossy", "host", Role.HOST), tracks=av_tracks(), datagram_hook=link)
    try:
        await host.connect()
        await published(server, "lossy", 2)
        expect(await record(server, "lossy", "start", "lossy-1"), Recorded)
        await recorded(server, "lossy", video=60, audio=100)
        stopped = expect(await record(server, "lossy", "stop", "lossy-1"), Recorded)
        assert_never_transcoded(server)
    finally:
        await host.close()
    assert link.counters["up"].dropped > 0
    assert stopped.recording is not None and stopped.recording.error is None
    demuxed = Demuxed(tmp_path / "recordings" / "lossy-1.webm")
    demuxed.check_timeline(strict=False)
    assert demuxed.decode_errors == 0 and demuxed.decoded["video"] >= 60 and demuxed.decoded["audio"] >= 100


async def test_record_command_errors_are_typed(server: RunningServer, tmp_path: Path) -> None:
    assert refusal(await record(server, "nowhere", "stop", "x")).error == ErrorCode.RECORDING_NOT_FOUND
    assert refusal(await record(server, "nowhere", "start", "x")).error == ErrorCode.ROOM_NOT_FOUND
    host = VitrineClient(server.url, server.token("errs", "host", Role.HOST), tracks=[AudioStreamTrack()])
    try:
        await host.connect()
        await published(server, "errs", 1)
        assert refusal(await record(server, "errs", "stop", "x")).error == ErrorCode.RECORDING_NOT_FOUND
        directory = tmp_path / "recordings"
        directory.mkdir(exist_ok=True)
        (directory / "x.webm.part").write_bytes(b"what a crashed worker left")
        started = expect(await record(server, "errs", "start", "x"), Recorded)
        assert started.recording is not None
        kept = [p for p in directory.iterdir() if p.name.startswith("x.webm.part.")]
        assert [p.read_bytes() for p in kept] == [b"what a crashed worker left"], "a crash's file is kept aside"
        assert (started.recording.part, started.recording.path) == (1, "x.1.webm")  # after the crash's part 0
        assert refusal(await record(server, "errs", "stop", "y")).error == ErrorCode.RECORDING_NOT_FOUND
        expect(await record(server, "errs", "stop", "x"), Recorded)
    finally:
        await host.close()
    for bad in ("../escape", "a.b", "", "x" * 65, "sp ace"):
        with pytest.raises(ValidationError):
            command_adapter.validate_python({"op": "record", "room": "errs", "action": "start", "recording_id": bad})


async def test_closing_the_room_finalizes_the_recording(server: RunningServer, tmp_path: Path) -> None:
    host = VitrineClient(server.url, server.token("closing", "host", Role.HOST), tracks=av_tracks())
    try:
        await host.connect()
        await published(server, "closing", 2)
        expect(await record(server, "closing", "start", "closing-1"), Recorded)
        await recorded(server, "closing", video=30, audio=50)
        async with server.api() as api:
            assert (await api.delete("/v1/rooms/closing")).status_code == 200
        assert "closing" not in worker_of(server).recordings
        assert_never_transcoded(server)
    finally:
        await host.close()
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == ["closing-1.webm"]
    demuxed = Demuxed(tmp_path / "recordings" / "closing-1.webm")
    assert demuxed.codecs == {"video": "vp8", "audio": "opus"}
    demuxed.check_timeline(strict=False)
    assert demuxed.decode_errors == 0 and demuxed.decoded["video"] >= 30


async def test_recording_an_id_again_makes_its_next_part_and_keeps_the_first(
    server: RunningServer, tmp_path: Path
) -> None:
    """The room changed worker: the next worker records the same id again, into part 1, never over part 0."""
    directory = tmp_path / "recordings"
    parts: list[RecordingInfo] = []
    part0: list[bytes] = []  # part 0's bytes after each recording
    for room in ("before", "after"):  # the same recording id, from two rooms in turn
        host = VitrineClient(server.url, server.token(room, "host", Role.HOST), tracks=av_tracks())
        try:
            await host.connect()
            await published(server, room, 2)
            expect(await record(server, room, "start", "moved"), Recorded)
            await recorded(server, room, video=30, audio=50)
            stopped = expect(await record(server, room, "stop", "moved"), Recorded)
            assert stopped.recording is not None
            parts.append(stopped.recording)
        finally:
            await host.close()
        part0.append((directory / "moved.webm").read_bytes())
    assert [(p.part, p.path, p.finished) for p in parts] == [(0, "moved.webm", True), (1, "moved.1.webm", True)]
    assert sorted(p.name for p in directory.iterdir()) == ["moved.1.webm", "moved.webm"]
    assert part0[0] == part0[1], "the first part is left as it was"
    for info in parts:
        demuxed = Demuxed(directory / info.path)
        assert demuxed.codecs == {"video": "vp8", "audio": "opus"} and demuxed.decode_errors == 0
        assert demuxed.decoded["video"] >= 30 and demuxed.decoded["audio"] >= 50
        assert demuxed.started_at_ms == info.started_at_ms  # what signaling reads for a part nobody stopped
    assert parts[0].started_at_ms + parts[0].duration_ms <= parts[1].started_at_ms


async def test_a_part_another_recorder_finished_meanwhile_is_never_overwritten(
    server: RunningServer, tmp_path: Path
) -> None:
    """The part is claimed when the file is created, not when the recording starts: a part 0 that appeared
    in between (a recorder the system should never have run alongside) pushes this one to part 1."""
    directory = tmp_path / "recordings"
    watcher = VitrineClient(server.url, server.token("race", "watcher", Role.HOST), tracks=[])
    host = VitrineClient(server.url, server.token("race", "host", Role.HOST, create=False), tracks=av_tracks())
    try:
        await watcher.connect()
        await published(server, "race", 0)
        started = expect(await record(server, "race", "start", "race-1"), Recorded)
        assert started.recording is not None and started.recording.path == "race-1.webm"  # provisional
        (directory / "race-1.webm").write_bytes(b"another recorder's part 0")
        await host.connect()
        await published(server, "race", 2)
        await recorded(server, "race", video=20, audio=30)
        stopped = expect(await record(server, "race", "stop", "race-1"), Recorded)
    finally:
        for client in (host, watcher):
            await client.close()
    assert stopped.recording is not None and (stopped.recording.part, stopped.recording.path) == (1, "race-1.1.webm")
    assert (directory / "race-1.webm").read_bytes() == b"another recorder's part 0"
    assert Demuxed(directory / "race-1.1.webm").decoded["video"] >= 20


async def test_a_room_made_for_recording_records_from_its_first_join(server: RunningServer, tmp_path: Path) -> None:
    assert server.runtime is not None
    await server.runtime.state.rooms.create_room(Room(name="auto-show", kind=RoomKind.LIVE, recording_id="auto-1"))
    host = VitrineClient(server.url, server.token("auto-show", "host", Role.HOST, create=False), tracks=av_tracks())
    try:
        await host.connect()
        await wait_for(lambda: "auto-show" in worker_of(server).recordings, "the recording to start")
        await recorded(server, "auto-show", video=20, audio=30)
        await worker_of(server).close()  # the worker going away finalizes it too
    finally:
        await host.close()
    demuxed = Demuxed(tmp_path / "recordings" / "auto-1.webm")
    assert demuxed.codecs == {"video": "vp8", "audio": "opus"}
    assert demuxed.decode_errors == 0 and demuxed.decoded["video"] >= 20


PLAY = """async (src) => {
  const video = document.createElement("video");
  video.muted = true;
  video.src = src;
  document.body.appendChild(video);
  const failure = () => video.error ? `${video.error.code} ${video.error.message}` : "timed out";
  await new Promise((ok, ko) => {
    video.onloadedmetadata = ok;
    video.onerror = () => ko(new Error(failure()));
    setTimeout(() => ko(new Error(failure())), 20000);
  });
  await video.play();
  const start = performance.now();
  while (!video.ended && video.currentTime < 1 && performance.now() - start < 20000) {
    await new Promise((done) => setTimeout(done, 50));
  }
  return {width: video.videoWidth, height: video.videoHeight, time: video.currentTime, duration: video.duration,
          frames: video.getVideoPlaybackQuality().totalVideoFrames};
}"""


@pytest.mark.browser
async def test_chromium_plays_both_formats(server: RunningServer, browser, tmp_path: Path) -> None:
    """What the replay page does: a plain <video> on the file, WebM (VP8 + Opus) and MP4 (H.264 + Opus)."""
    host = VitrineClient(server.url, server.token("play-vp8", "host", Role.HOST), tracks=av_tracks())
    obs = None
    try:
        await host.connect()
        obs, _, _ = await whip_publish(server, "play-h264", "obs", video_codec="video/H264")
        await published(server, "play-vp8", 2)
        await published(server, "play-h264", 2)
        for room in ("play-vp8", "play-h264"):
            expect(await record(server, room, "start", room), Recorded)
        for room in ("play-vp8", "play-h264"):
            await recorded(server, room, video=60, audio=100)
            assert expect(await record(server, room, "stop", room), Recorded).recording is not None
    finally:
        await host.close()
        if obs is not None:
            await obs.close()
    directory = tmp_path / "recordings"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    files = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        page = await browser.new_page()
        base = f"http://127.0.0.1:{files.server_address[1]}/"
        await page.goto(base)
        for name in ("play-vp8.webm", "play-h264.mp4"):
            played = await page.evaluate(PLAY, base + name)
            assert (played["width"], played["height"]) == (320, 240), (name, played)
            assert played["duration"] >= 1.5 and played["time"] >= 0.9 and played["frames"] >= 15, (name, played)
    finally:
        files.shutdown()
        files.server_close()
