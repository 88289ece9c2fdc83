"""The Janus side of the join benchmarks works end to end: a real ``janus`` (Debian's 1.1, VideoRoom), one aiortc
publisher and three aiortc viewers (``loadtest/janus.py``), each viewer decoding the publisher's video.

It needs what the benchmark needs: the ``janus`` package (scripts/install-system-deps) and root with ``ip`` and
``nft``, since Janus runs in a network namespace of its own (it never offers a loopback candidate).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from loadtest import janus
from loadtest.source import MovingPatternTrack
from media.taps import configure_host_candidates

ROOM = 4242
VIEWERS = 3
FRAMES = 3
STEP_TIMEOUT_S = 20.0


@pytest.fixture
async def janus_server() -> AsyncIterator[janus.JanusServer]:
    """Janus started in its namespace; this process's peers gather on the host end of its veth pair meanwhile."""
    server = janus.JanusServer()
    await asyncio.to_thread(server.start)
    configure_host_candidates([server.client_ip])
    try:
        yield server
    finally:
        configure_host_candidates(["127.0.0.1"])  # tests/conftest.py's loopback_only_ice, for the tests after
        await asyncio.to_thread(server.stop)


async def test_three_viewers_decode_the_publisher(janus_server: janus.JanusServer) -> None:
    async with httpx.AsyncClient(base_url=janus_server.url, timeout=STEP_TIMEOUT_S) as http:
        await janus.create_room(http, ROOM)
        publisher = janus.JanusPublisher(http, ROOM, [MovingPatternTrack(320, 240)])
        viewers: list[janus.JanusViewer] = []
        try:
            await publisher.publish(STEP_TIMEOUT_S)
            assert publisher.feed is not None
            assert publisher.pc.connectionState == "connected"

            viewers = [janus.JanusViewer(http, ROOM, publisher.feed) for _ in range(VIEWERS)]
            await asyncio.gather(*(viewer.join(STEP_TIMEOUT_S) for viewer in viewers))
            await asyncio.gather(*(viewer.wait_connected(STEP_TIMEOUT_S) for viewer in viewers))

            async def decode(viewer: janus.JanusViewer) -> list[tuple[int, int]]:
                return [((f := await viewer.video_frame(STEP_TIMEOUT_S)).width, f.height) for _ in range(FRAMES)]

            decoded = await asyncio.gather(*(decode(viewer) for viewer in viewers))
            assert decoded == [[(320, 240)] * FRAMES] * VIEWERS
            assert [viewer.pc.connectionState for viewer in viewers] == ["connected"] * VIEWERS
            assert [viewer.session.hangup.is_set() for viewer in viewers] == [False] * VIEWERS
            assert janus_server.proc is not None and janus_server.proc.poll() is None
        finally:
            for viewer in viewers:
                await viewer.close()
            await publisher.close()
    assert janus_server.log_errors() == []
