"""What the scaled-mode tests share (tests/test_scaled.py, tests/test_drain.py): a consult with media both ways,
and which live worker runs in which process."""

from __future__ import annotations

from loadtest.client import VitrineClient
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role


async def consult_with_media(server: RunningServer, room: str) -> tuple[VitrineClient, VitrineClient]:
    """A shopper and an agent in ``room``, each receiving five video and five audio frames from the other."""
    customer = VitrineClient(server.url, server.token(room, "shopper"), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token(room, "agent", Role.AGENT), tracks=av_tracks())
    await customer.connect()
    await agent.connect()
    for client in (customer, agent):
        tracks = await remote_tracks(client, 2)
        assert len(await receive_frames(tracks["video"], 5)) == 5
        assert len(await receive_frames(tracks["audio"], 5)) == 5
    return customer, agent


async def worker_ids_by_pid(state) -> dict[int, str]:  # noqa: ANN001 - the coordination state
    """The live workers' ids by the pid their heartbeat stats report (0 until the stats arrive)."""
    return {node.stats.get("pid", 0): node.id for node in await state.nodes.live_workers()}
