"""An inspection records only the buyer: ``RecordCommand.identity`` keeps the file to that identity's tracks.

The inspector publishes audio and the buyer video only, so any inspector track that reached the file would
show as an audio stream. The buyer reconnects with a new sid mid-recording and the file goes on.
"""

from __future__ import annotations

from pathlib import Path

import av
from aiortc.mediastreams import AudioStreamTrack

from tests.media_helpers import MovingPatternTrack
from tests.worker_harness import ROOM, Harness, wait_for
from vitrine.core.models import Role
from vitrine.core.wire.rpc import RecordCommand, Recorded, expect


async def test_recording_an_identity_keeps_to_its_tracks_across_a_reconnect(harness: Harness, tmp_path: Path) -> None:
    worker = harness.worker
    buyer = await harness.join("buyer", Role.BUYER, [MovingPatternTrack()])
    await harness.join("inspector", Role.INSPECTOR, [AudioStreamTrack()])
    await harness.published(2)
    expect(
        await worker.handle(RecordCommand(room=ROOM.name, action="start", recording_id="case-1", identity="buyer")),
        Recorded,
    )
    recording = worker.recordings[ROOM.name]
    await wait_for(lambda: recording.info().video_frames >= 20, "the buyer's video in the file")

    await harness.join("assistant", Role.INSPECTOR, [AudioStreamTrack()])  # a later publication, not the buyer's
    await harness.published(3)
    await harness.leave(buyer)
    await harness.published(2)
    before = recording.info().video_frames
    await harness.join("buyer", Role.BUYER, [MovingPatternTrack()], sid="PA_buyer-again")
    await harness.published(3)
    await wait_for(lambda: recording.info().video_frames >= before + 20, "the reconnected buyer's video")

    stopped = await worker.handle(RecordCommand(room=ROOM.name, action="stop", recording_id="case-1"))
    info = expect(stopped, Recorded).recording
    assert info is not None and info.finished and info.error is None
    assert info.audio_frames == 0 and info.video_frames >= before + 20
    stats = worker.media_stats()
    assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0
    with av.open(str(tmp_path / "recordings" / info.path)) as container:
        assert [s.type for s in container.streams] == ["video"]
        frames = [(f.width, f.height) for f in container.decode(video=0)]
    assert len(frames) >= before + 20 and set(frames) == {(320, 240)}
