"""What the scaled-mode tests share (tests/test_scaled.py, tests/test_drain.py, ...): the processes' environment,
a consult with media both ways, and which live worker runs in which process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loadtest.client import VitrineClient
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import TEST_SECRET, RunningServer
from vitrine.core.models import Role


def scaled_env(redis_url: str, tmp_path: Path | None, **settings: str) -> dict[str, str]:
    """The VITRINE_* variables of a scaled test deployment's processes: on ``redis_url``, media on loopback, fast
    heartbeats (a worker is gone 2 s after its last one), files under ``tmp_path`` (not the checkout's ./var;
    None: the test sets them per process), and ``settings`` on top."""
    env = {
        "VITRINE_REDIS_URL": redis_url,
        "VITRINE_API_KEY": "testkey",
        "VITRINE_API_SECRET": TEST_SECRET,
        "VITRINE_RTC_INTERFACES": "127.0.0.1",
        "VITRINE_WORKER_HEARTBEAT_S": "0.5",
        "VITRINE_WORKER_TTL_S": "2",
        "VITRINE_LOG_LEVEL": "warning",
    }
    if tmp_path is not None:
        env |= {
            "VITRINE_DATA_DIR": str(tmp_path / "data"),
            "VITRINE_EVIDENCE_DIR": str(tmp_path / "evidence"),
            "VITRINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        }
    return env | settings


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


async def video_both_ways(customer: VitrineClient, agent: VitrineClient, frames: int = 3) -> None:
    """Each of the two decodes ``frames`` video frames of the other's (fails after the helpers' timeouts)."""
    for client in (customer, agent):
        video = await client.next_remote_track("video", timeout=60)
        assert len(await receive_frames(video, frames, timeout=60)) == frames


async def join_pair(server: RunningServer, room: str) -> tuple[VitrineClient, VitrineClient]:
    """A shopper, then an agent, in ``room``, both publishing audio and video: what a consult's burst does."""
    customer = VitrineClient(server.url, server.token(room, "shopper"), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token(room, "agent", Role.AGENT), tracks=av_tracks())
    await customer.connect(timeout=60)
    await agent.connect(timeout=60)
    return customer, agent


async def close_all(*clients: VitrineClient) -> None:
    for client in clients:
        await client.close()


async def consult_until_video(
    server: RunningServer, room: str, attempts: int = 3
) -> tuple[tuple[VitrineClient, VitrineClient], int]:
    """Join a pair to ``room`` until both decode the other's video, joining again (as a client does) when the
    server refuses the join or sends a client to reconnect; returns the pair and how many joins it took."""
    for attempt in range(1, attempts + 1):
        customer = VitrineClient(server.url, server.token(room, "shopper"), tracks=av_tracks())
        agent = VitrineClient(server.url, server.token(room, "agent", Role.AGENT), tracks=av_tracks())
        try:
            await customer.connect(timeout=60)
            await agent.connect(timeout=60)
            video = asyncio.create_task(video_both_ways(customer, agent))
            sent_away = [asyncio.create_task(c.wait_closed(timeout=120)) for c in (customer, agent)]
            await asyncio.wait([video, *sent_away], return_when=asyncio.FIRST_COMPLETED)
            for task in sent_away:
                task.cancel()
            if video.done() and video.exception() is None:
                return (customer, agent), attempt
            video.cancel()
        except ConnectionError:
            pass
        await close_all(customer, agent)
    raise AssertionError(f"the pair in {room} got no video in {attempts} joins")
