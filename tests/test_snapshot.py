"""Server-side snapshots: a keyframe of a participant's live video decoded on the worker, stored as a JPEG.

Real aiortc publishers (VP8 answered like a page, H.264 offered like OBS) into an inspection room; the
JPEG is decoded again with PyAV to check it. Forwarding still never decodes nor encodes anything.
"""

from __future__ import annotations

import asyncio
import hashlib

import av
import pytest
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from av import VideoFrame

from media.snapshot import take_snapshot
from tests.media_helpers import MovingPatternTrack
from tests.worker_harness import ROOM, Harness, Page, wait_for
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Participant, Role, Room, RoomKind
from vitrine.core.wire.inspect import Artifact, ArtifactKind
from vitrine.core.wire.rpc import (
    JoinCommand,
    Negotiated,
    OfferCommand,
    Refused,
    Snapped,
    SnapshotCommand,
    WorkerReply,
    expect,
)


async def snapshot(harness: Harness, identity: str, room: str = ROOM.name) -> WorkerReply:
    return await harness.worker.handle(SnapshotCommand(room=room, identity=identity))


def refusal(reply: WorkerReply) -> Refused:
    assert isinstance(reply, Refused), reply
    return reply


async def video_flowing(harness: Harness, room: str = ROOM.name) -> None:
    ups = harness.worker.rooms[room].ups.values()
    await wait_for(lambda: any(u.is_video and u.counters.packets_in > 30 for u in ups), "the published video")


def check_jpeg(harness: Harness, artifact: Artifact, size: tuple[int, int]) -> None:
    """The stored file is the artifact's, and a JPEG of the publisher's frame with its moving white bar."""
    path = harness.case_dir / artifact.file
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and artifact.file.endswith(".jpg")
    assert artifact.sha256 == hashlib.sha256(data).hexdigest() and artifact.bytes == len(data)
    assert artifact.kind == ArtifactKind.SNAPSHOT and artifact.content_type == "image/jpeg"
    assert artifact.source == "media worker snapshot (decoded keyframe)"
    assert (artifact.width, artifact.height) == size
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == size
    columns = frame.to_ndarray(format="gray").mean(axis=0)
    assert columns.max() > 200 and columns.min() < 30, "the pattern's white bar on black"


def assert_never_transcoded(harness: Harness) -> None:
    stats = harness.worker.media_stats()
    assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0


async def test_a_snapshot_of_the_buyers_vp8_video(harness: Harness) -> None:
    await harness.join("buyer", Role.BUYER, [MovingPatternTrack(640, 360), AudioStreamTrack()])
    await harness.published(2)
    await harness.join("inspector", Role.INSPECTOR, [])  # watches: the forwarding path has a subscriber
    await video_flowing(harness)
    up = next(u for u in harness.worker.rooms[ROOM.name].ups.values() if u.is_video)
    requests = up.counters.keyframe_requests
    first = expect(await snapshot(harness, "buyer"), Snapped)
    check_jpeg(harness, first.artifact, (640, 360))
    assert up.counters.keyframe_requests > requests and up.sinks == []
    second = expect(
        await snapshot(harness, "buyer"), Snapped
    )  # at once: the keyframe request's rate limit does not stall it
    assert second.artifact.file != first.artifact.file
    check_jpeg(harness, second.artifact, (640, 360))
    assert_never_transcoded(harness)
    assert sorted(p.name for p in harness.case_dir.iterdir()) == sorted([first.artifact.file, second.artifact.file])


async def test_a_snapshot_of_h264_from_an_obs_style_offer(harness: Harness) -> None:
    """H.264 (what OBS sends over WHIP): the decoder gets SPS, PPS and the IDR slice of one frame."""
    await harness.join("buyer", Role.BUYER, [])  # the case's buyer: the room's evidence folder comes with its join
    participant = Participant(
        sid="PA_obs",
        identity="obs",
        role=Role.INSPECTOR,
        grants=ROLE_DEFAULT_GRANTS[Role.INSPECTOR],
        node_id="node-test",
    )
    joined = await harness.worker.handle(JoinCommand(room=ROOM, participant=participant, auto_subscribe=False))
    assert expect(joined, Negotiated).offer is None
    page = harness.pages[participant.sid] = Page(participant, [])
    video = page.pc.addTransceiver(MovingPatternTrack(), direction="sendonly")
    video.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in ("video/H264", "video/rtx")]
    )
    await page.pc.setLocalDescription(await page.pc.createOffer())
    reply = await harness.worker.handle(OfferCommand(room=ROOM.name, sid="PA_obs", sdp=page.pc.localDescription.sdp))
    answer = expect(reply, Negotiated).answer
    assert answer is not None
    await page.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
    await harness.published(1)
    await video_flowing(harness)
    assert next(iter(harness.worker.rooms[ROOM.name].ups.values())).codec.mimeType.lower() == "video/h264"
    taken = expect(await snapshot(harness, "obs"), Snapped)
    check_jpeg(harness, taken.artifact, (320, 240))
    assert_never_transcoded(harness)


class PausableTrack(MovingPatternTrack):
    """A camera the buyer pauses: once ``parked`` is set, its sender encodes and sends nothing more."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.parked = asyncio.Event()

    async def recv(self) -> VideoFrame:
        if self.paused:
            self.parked.set()
            await asyncio.Event().wait()  # until the connection closes
        return await super().recv()


async def test_snapshot_errors_are_typed(harness: Harness) -> None:
    camera = PausableTrack()
    await harness.join("buyer", Role.BUYER, [camera, AudioStreamTrack()])
    await harness.join("inspector", Role.INSPECTOR, [AudioStreamTrack()])
    await harness.published(3)
    await video_flowing(harness)
    assert refusal(await snapshot(harness, "nobody")).error == ErrorCode.TRACK_NOT_FOUND
    assert refusal(await snapshot(harness, "inspector")).error == ErrorCode.TRACK_NOT_FOUND  # audio only
    assert refusal(await snapshot(harness, "buyer", room="inspect-cs_000000000000")).error == ErrorCode.ROOM_NOT_FOUND

    camera.paused = True
    await asyncio.wait_for(camera.parked.wait(), 30)
    up = next(u for u in harness.worker.rooms[ROOM.name].ups.values() if u.is_video)
    paused = refusal(await snapshot(harness, "buyer"))
    assert paused.error == ErrorCode.TRACK_NOT_FOUND and "no video frame" in paused.message
    assert up.sinks == [], "the snapshot's sink is gone"
    assert not harness.case_dir.exists()


async def test_snapshots_belong_to_inspection_rooms(harness: Harness) -> None:
    consult = Room(name="consult-1", kind=RoomKind.CONSULT, shop="acme")
    await harness.join("customer", Role.CUSTOMER, [MovingPatternTrack()], room=consult)
    await harness.published(1, room=consult)
    assert refusal(await snapshot(harness, "customer", room="consult-1")).error == ErrorCode.CASE_NOT_FOUND


async def test_take_snapshot_refuses_audio(harness: Harness) -> None:
    await harness.join("buyer", Role.BUYER, [AudioStreamTrack()])
    await harness.published(1)
    audio = next(iter(harness.worker.rooms[ROOM.name].ups.values()))
    with pytest.raises(VitrineError) as refused:
        await take_snapshot(audio)
    assert refused.value.code == ErrorCode.TRACK_NOT_FOUND
