"""``vitrine serve``'s worker processes (``vitrine/worker_pool.py``): every core forwards, with no Redis.

The server runs here (its signaling in the test's event loop); its two media workers are real ``vitrine media``
processes, lent the server's in-memory coordination over the bridge. Calls are spread over both, a live show's
viewers cascade across them, a killed worker is started again and its clients move, and nothing outlives the
server, not even when it is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.client import VitrineClient
from loadtest.inprocess import TEST_API_KEY, serve_app
from tests.durability_helpers import until
from tests.live_helpers import go_live, make_show, viewer_token
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.scaled_helpers import close_all, consult_until_video, join_pair, video_both_ways
from tests.servers import TEST_SECRET, RunningServer, free_port
from vitrine.core.state import Coordination

WORKERS = 2
PAIRS = 4
VIEWERS = 4
WAIT_S = 60.0


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve_app(media_workers=WORKERS) as running:
        yield running


def coordination(server: RunningServer) -> Coordination:
    assert server.runtime is not None
    return server.runtime.state.coordination


async def worker_pids(state: Coordination) -> dict[str, int]:
    return {node.id: node.stats.get("pid", 0) for node in await state.nodes.live_workers()}


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for a reaper has exited too)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_calls_are_spread_over_the_worker_processes_and_all_get_video(server: RunningServer) -> None:
    state = coordination(server)
    pids = await worker_pids(state)
    assert len(pids) == WORKERS and os.getpid() not in pids.values() and len(set(pids.values())) == WORKERS
    names = [f"pair-{i}" for i in range(PAIRS)]
    pairs = await asyncio.gather(*(join_pair(server, name) for name in names))
    try:
        await asyncio.gather(*(video_both_ways(*pair) for pair in pairs))
        placed = [(await state.rooms.get_room(name)) for name in names]
        assert {room.worker_id for room in placed if room is not None} == set(pids)  # both workers took calls
        assert all(client.leave_notice is None for pair in pairs for client in pair)
    finally:
        await close_all(*(client for pair in pairs for client in pair))


async def test_a_show_cascades_across_the_worker_processes(server: RunningServer) -> None:
    state = coordination(server)
    show = await make_show(server)
    console, host_token = await go_live(server, show)
    host = VitrineClient(server.url, host_token, tracks=av_tracks())
    clients = [host]
    try:
        await host.connect()
        room_name = f"live-{show['id']}"

        async def published() -> bool:
            return len(await state.rooms.list_tracks(room_name)) >= 2

        await until(published, "the host should publish", timeout=WAIT_S)
        for index in range(VIEWERS):
            viewer = VitrineClient(server.url, await viewer_token(server, show, f"viewer-{index}"))
            clients.append(viewer)
            await viewer.connect()
            video = (await remote_tracks(viewer, 2, timeout=WAIT_S))["video"]
            assert len(await receive_frames(video, 3, timeout=WAIT_S)) == 3
        room = await state.rooms.get_room(room_name)
        assert room is not None and room.worker_id is not None
        relays = await state.rooms.list_relays(room_name)
        assert len(relays) == 1 and relays[0] != room.worker_id  # the other process relays the host

        async def viewers_on_both() -> bool:  # as the workers' next heartbeats count them
            return all(node.participants >= 1 for node in await state.nodes.live_workers())

        await until(viewers_on_both, "both worker processes should serve viewers", timeout=WAIT_S)
    finally:
        await close_all(*clients)
        await console.aclose()


async def test_a_killed_worker_is_started_again_and_its_clients_move(server: RunningServer) -> None:
    state = coordination(server)
    (customer, agent), _ = await consult_until_video(server, "crash")
    clients = [customer, agent]
    try:
        room = await state.rooms.get_room("crash")
        assert room is not None and room.worker_id is not None
        victim = room.worker_id
        os.kill((await worker_pids(state))[victim], signal.SIGKILL)
        for client in (customer, agent):
            await client.wait_closed(timeout=WAIT_S)
            assert client.leave_notice is not None and client.leave_notice["reconnect"] is True

        async def replaced() -> bool:
            ids = set(await worker_pids(state))
            return len(ids) == WORKERS and victim not in ids

        await until(replaced, "the killed worker's slot should be started again under a new id", timeout=WAIT_S)
        (customer, agent), _ = await consult_until_video(server, "crash")
        clients += [customer, agent]
        moved = await state.rooms.get_room("crash")
        assert moved is not None and moved.worker_id in set(await worker_pids(state))
    finally:
        await close_all(*clients)


async def test_the_servers_metrics_show_every_worker_process(server: RunningServer) -> None:
    state = coordination(server)
    workers = await worker_pids(state)
    async with server.api() as api:
        text = (await api.get("/metrics")).text
    families = list(text_string_to_metric_families(text))
    names = [family.name for family in families]
    assert len(names) == len(set(names))  # one family per name, the workers' merged with the server's own
    forwarded = next(family for family in families if family.name == "vitrine_media_forwarded_packets")
    nodes = {sample.labels["node"] for sample in forwarded.samples}
    assert nodes == {worker_id.removesuffix("-media") for worker_id in workers}


async def test_stopping_the_server_stops_its_workers() -> None:
    async with serve_app(media_workers=WORKERS) as running:
        pids = list((await worker_pids(coordination(running))).values())
        assert len(pids) == WORKERS
    assert all(gone(pid) for pid in pids)  # the pool waited for each (or killed it) before the server stopped


async def test_a_killed_server_takes_its_workers_with_it(tmp_path: Path) -> None:
    """SIGKILL of ``vitrine serve``: the kernel closes the bridge, and each worker closes its rooms and exits."""
    port = free_port()
    env = {
        **os.environ,
        "VITRINE_API_KEY": TEST_API_KEY,
        "VITRINE_API_SECRET": TEST_SECRET,
        "VITRINE_MEDIA_WORKERS": str(WORKERS),
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_WORKER_METRICS_PORT": "0",
    }
    cmd = [sys.executable, "-m", "vitrine.cli", "serve", "--port", str(port)]
    serve = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def ready() -> bool:
                assert serve.poll() is None, "vitrine serve exited"
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await until(ready, "vitrine serve should become healthy", timeout=WAIT_S)
            workers = await http.get("/v1/workers", auth=(TEST_API_KEY, TEST_SECRET))
            pids = [row["stats"]["pid"] for row in workers.json()]
        assert len(pids) == WORKERS
        serve.kill()
        serve.wait(timeout=WAIT_S)

        async def all_gone() -> bool:
            return all(gone(pid) for pid in pids)

        await until(all_gone, "every worker should exit once its server is gone", timeout=WAIT_S)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
