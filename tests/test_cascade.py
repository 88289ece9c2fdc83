"""One live show across two media worker processes: the host on one, viewers spread over both (the
second relays the first's tracks), and a relay that dies sends its viewers to reconnect elsewhere."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from loadtest.client import RemoteTrack, VitrineClient
from tests.live_helpers import make_show
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.scaled_helpers import scaled_env
from tests.servers import ProcessGroup, RunningServer, free_port, make_settings, wait_healthy
from vitrine.core.state.redis_state import open_redis_coordination

WAIT_S = 30.0
VIEWERS = 4


async def _watching(server: RunningServer, shop: str, show: str) -> tuple[VitrineClient, RemoteTrack]:
    """A viewer that joined like the viewer page does, and its video, which plays."""
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        token = (await http.get(f"/v1/live/{shop}/{show}/viewer")).json()["token"]
    viewer = VitrineClient(server.url, token)
    await viewer.connect()
    tracks = await remote_tracks(viewer, 2, timeout=WAIT_S)
    assert len(await receive_frames(tracks["video"], 3, timeout=WAIT_S)) == 3
    return viewer, tracks["video"]


async def _closed(client: VitrineClient, timeout: float) -> bool:
    try:
        await client.wait_closed(timeout=timeout)
    except TimeoutError:
        return False
    return True


async def test_a_show_spans_two_workers_and_survives_losing_a_relay(redis_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = scaled_env(redis_db_url, tmp_path, VITRINE_RECORDINGS_DIR=str(tmp_path))
    group = ProcessGroup(env)
    state = None
    clients: list[VitrineClient] = []
    try:
        group.start("signaling", "--port", str(port))
        workers = [group.start("media"), group.start("media")]
        server = RunningServer(settings=make_settings(port=port), url=f"http://127.0.0.1:{port}")
        await wait_healthy(server.url, group)
        state = await open_redis_coordination(redis_db_url)
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while len(await state.nodes.live_workers()) < 2:
            assert asyncio.get_running_loop().time() < deadline, "both workers should register"
            await asyncio.sleep(0.1)

        show = await make_show(server)
        async with server.api() as api:
            login = (await api.post(f"/v1/shops/acme/shows/{show['id']}/console")).json()["token"]
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
            started = await http.post("/v1/live/console/start", headers={"Authorization": f"Bearer {login}"})
        host = VitrineClient(server.url, started.json()["token"], tracks=av_tracks())
        clients.append(host)
        await host.connect()
        room_name = f"live-{show['id']}"
        while len(await state.rooms.list_tracks(room_name)) < 2:
            assert asyncio.get_running_loop().time() < deadline + WAIT_S, "the host should publish"
            await asyncio.sleep(0.05)

        watching = [await _watching(server, "acme", show["id"]) for _ in range(VIEWERS)]
        viewers = [viewer for viewer, _ in watching]
        clients += viewers
        room = await state.rooms.get_room(room_name)
        assert room is not None and room.worker_id is not None
        (relay,) = await state.rooms.list_relays(room_name)  # the other worker pulled the host's tracks
        assert relay != room.worker_id
        pids = {node.id: node.stats.get("pid", 0) for node in await state.nodes.live_workers()}
        for worker_id in (room.worker_id, relay):  # both forward, neither decodes
            node = await state.nodes.get(worker_id)
            while node is None or node.stats.get("packets_out", 0) == 0:
                assert asyncio.get_running_loop().time() < deadline + 2 * WAIT_S, node
                await asyncio.sleep(0.1)
                node = await state.nodes.get(worker_id)
            assert node.stats["decoders_running"] == 0 and node.stats["encoders_created"] == 0

        (victim,) = [proc for proc in workers if proc.pid == pids[relay]]
        victim.send_signal(signal.SIGKILL)
        closed = await asyncio.gather(*(_closed(viewer, 15) for viewer in viewers))
        moved = [viewer for viewer, gone in zip(viewers, closed, strict=True) if gone]
        stayed = [video for (_, video), gone in zip(watching, closed, strict=True) if not gone]
        assert moved and stayed, "viewers were on both workers"
        assert all(v.leave_notice and v.leave_notice["reconnect"] is True for v in moved)
        for video in stayed:  # the origin's viewers never noticed
            assert len(await receive_frames(video, 3, timeout=WAIT_S)) == 3
        for _ in moved:  # the moved viewers come back, on the worker that is left
            clients.append((await _watching(server, "acme", show["id"]))[0])
        assert await state.rooms.list_relays(room_name) == []
    except BaseException:
        print(group.output())
        raise
    finally:
        for client in clients:
            await client.close()
        if state is not None:
            await state.close()
        group.stop()
