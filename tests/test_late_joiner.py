"""A late joiner sees video at once: the worker asks the publisher for a keyframe.

aiortc's VP8 encoder only sends a keyframe every 3000 frames (100 s at 30 fps)
unless asked, so a first frame within the timeout below proves the request.
"""

from __future__ import annotations

from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.client import VitrineClient
from vitrine.models import Role

NATURAL_KEYFRAME_INTERVAL_S = 3000 / 30


async def test_late_joiner_gets_a_keyframe_on_request(server: RunningServer) -> None:
    host = VitrineClient(server.url, server.token("show", "host", Role.HOST), tracks=av_tracks())
    early = VitrineClient(server.url, server.token("show", "early", Role.VIEWER, create=False))
    late = VitrineClient(server.url, server.token("show", "late", Role.VIEWER, create=False))
    try:
        await host.connect()
        await early.connect()
        early_video = (await remote_tracks(early, 2))["video"]
        # Let the publisher run well past its first (and only natural) keyframe.
        await receive_frames(early_video, 60, timeout=60)
        requests_before = server.runtime.media_worker.media_stats()["keyframe_requests"]

        await late.connect()
        late_video = (await remote_tracks(late, 2))["video"]
        frames = await receive_frames(late_video, 3, timeout=NATURAL_KEYFRAME_INTERVAL_S / 4)
        assert len(frames) == 3
        assert server.runtime.media_worker.media_stats()["keyframe_requests"] > requests_before
    finally:
        for client in (late, early, host):
            await client.close()
