"""A late joiner sees video at once, from the cached keyframe or from a keyframe asked for.

aiortc's VP8 encoder only sends a keyframe every 3000 frames (100 s at 30 fps)
unless asked, so a first frame within the timeouts below proves the mechanism.
"""

from __future__ import annotations

import pytest

from loadtest.client import VitrineClient
from media import forwarder
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role

NATURAL_KEYFRAME_INTERVAL_S = 3000 / 30


def _downs(server: RunningServer) -> list[forwarder.DownTrack]:
    rooms = server.runtime.media_worker.rooms.values()
    return [d for room in rooms for up in room.ups.values() if up.is_video for d in up.downs.values()]


async def _late_join(server: RunningServer, room: str) -> tuple[VitrineClient, ...]:
    host = VitrineClient(server.url, server.token(room, "host", Role.HOST), tracks=av_tracks())
    early = VitrineClient(server.url, server.token(room, "early", Role.VIEWER, create=False))
    late = VitrineClient(server.url, server.token(room, "late", Role.VIEWER, create=False))
    await host.connect()
    await early.connect()
    early_video = (await remote_tracks(early, 2))["video"]
    # Let the publisher run well past its first (and only natural) keyframe.
    await receive_frames(early_video, 60, timeout=60)
    return host, early, late


async def test_late_joiner_starts_on_the_cached_keyframe(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, early, late = await _late_join(server, "show-cached")
    # No keyframe may be asked for: only the cached one (seconds old here) can start the late joiner.
    monkeypatch.setattr(forwarder.UpTrack, "request_keyframe", lambda self: None)
    monkeypatch.setattr(forwarder, "GOP_REPLAY_MAX_AGE_S", 3600.0)
    try:
        await late.connect()
        late_video = (await remote_tracks(late, 2))["video"]
        assert len(await receive_frames(late_video, 3, timeout=NATURAL_KEYFRAME_INTERVAL_S / 4)) == 3
        late_down = next(d for d in _downs(server) if d.subscriber_sid == late.joined["participant"]["sid"])
        assert late_down.counters.replayed > 1  # the keyframe and the frames since
    finally:
        for client in (late, early, host):
            await client.close()


async def test_late_joiner_gets_a_keyframe_on_request(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarder, "GOP_REPLAY_PACKETS", -1)  # no cached keyframe is ever recent enough
    host, early, late = await _late_join(server, "show-requested")
    try:
        requests_before = server.runtime.media_worker.media_stats()["keyframe_requests"]
        await late.connect()
        late_video = (await remote_tracks(late, 2))["video"]
        frames = await receive_frames(late_video, 3, timeout=NATURAL_KEYFRAME_INTERVAL_S / 4)
        assert len(frames) == 3
        assert server.runtime.media_worker.media_stats()["keyframe_requests"] > requests_before
    finally:
        for client in (late, early, host):
            await client.close()
