"""A room's recording across a change of media worker, on the embedded server with a Redis of its own: what
the recording and the replay tests share.

Flushing the server's Redis database is the real loss of coordination state: the worker closes its rooms,
finalizing each recording's part, and signaling sends every client to reconnect; their rejoin on the room put
back starts the next part.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from loadtest.client import VitrineClient
from tests.durability_helpers import until
from tests.servers import RunningServer
from vitrine.core.wire.rpc import RecordingInfo

WAIT_S = 60.0  # a loaded 2-core machine encodes every publisher's media in the test's process too


def recording_in(server: RunningServer, room: str) -> RecordingInfo | None:
    """The embedded worker's recording of the room right now, if it records it."""
    assert server.runtime is not None and server.runtime.media_worker is not None
    recording = server.runtime.media_worker.recordings.get(room)
    return recording.info() if recording is not None else None


async def recorded(server: RunningServer, room: str, part: int, video_frames: int) -> RecordingInfo:
    """Until part ``part`` of the room's recording holds ``video_frames``; its info then."""

    def enough() -> bool:
        info = recording_in(server, room)
        return info is not None and info.part == part and info.video_frames >= video_frames

    await until(enough, f"{video_frames} video frames in part {part} of {room}'s recording", timeout=WAIT_S)
    info = recording_in(server, room)
    assert info is not None
    return info


async def lose_coordination(server: RunningServer, clients: list[VitrineClient]) -> None:
    """Redis loses everything: the worker closes its rooms, and every client is sent to reconnect (closed here)."""
    async with aioredis.from_url(server.settings.redis_url) as raw:
        await raw.flushdb()
    for client in clients:
        await client.wait_closed(timeout=WAIT_S)
        assert client.leave_notice is not None and client.leave_notice["reconnect"] is True
        await client.close()
