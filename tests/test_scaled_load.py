"""Scaled mode under load: a signaling process and two ``vitrine media`` processes on a real Redis
(``loadtest.scaled.ScaledDeployment``), with bursts of consult pairs whose every client must decode video.

Two ways a loaded deployment lost its clients' video (issue 17, item 3), each caught here:
- a worker whose event loop was busy sent its heartbeat late, its registration lapsed for a moment, and signaling
  took it for dead: the next member of its rooms was placed on the other worker (the room split in two, nobody saw
  anybody) and the watchdog sent the members already joined to reconnect. A stopped worker (SIGSTOP) is that
  worker, deterministically;
- a burst of joins had more Redis commands in flight than redis-py's default pool, which then refused them.
Killing a worker (SIGKILL) mid-burst must still move its clients: they reconnect and get video on the other one.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest

from loadtest.client import VitrineClient
from loadtest.scaled import ScaledDeployment
from loadtest.server import API_KEY
from tests.media_helpers import av_tracks
from tests.scaled_helpers import close_all, consult_until_video, join_pair, video_both_ways
from tests.servers import TEST_SECRET, RunningServer, make_settings
from vitrine.core.models import Role
from vitrine.core.state import Coordination
from vitrine.core.state.redis_state import open_redis_coordination
from vitrine.core.state.rooms import RoomStore

PAIRS = 6  # 12 publishing aiortc clients in the test process, 12 peers on the workers: well under a minute each
DEADLINE_S = 90.0


@pytest.fixture
async def deployment(redis_db_url: str) -> AsyncIterator[ScaledDeployment]:
    deploy = ScaledDeployment(secret=TEST_SECRET, redis_url=redis_db_url, media_workers=2)
    await asyncio.to_thread(deploy.start)
    try:
        yield deploy
    finally:
        await asyncio.to_thread(deploy.stop)
        print(deploy.log_tail())  # shown only when the test fails


def server_of(deploy: ScaledDeployment) -> RunningServer:
    return RunningServer(settings=make_settings(api_key=API_KEY, port=deploy.port), url=deploy.url)


async def until(condition, what: str, timeout_s: float = DEADLINE_S) -> None:  # noqa: ANN001 - an async predicate
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def worker_of(rooms: RoomStore, name: str) -> str | None:
    room = await rooms.get_room(name)
    return room.worker_id if room is not None else None


async def test_a_burst_of_consult_pairs_all_get_video_on_both_workers(deployment: ScaledDeployment) -> None:
    server = server_of(deployment)
    names = [f"burst-{i}" for i in range(PAIRS)]
    pairs = await asyncio.gather(*(join_pair(server, name) for name in names))
    clients = [client for pair in pairs for client in pair]
    state = await open_redis_coordination(deployment.redis_url or "")
    try:
        await asyncio.gather(*(video_both_ways(*pair) for pair in pairs))
        placed = {await worker_of(state.rooms, name) for name in names}
        assert placed == {w.worker_id for w in deployment.workers}, placed  # the burst spread over both
        assert all(client.leave_notice is None for client in clients)
    finally:
        await close_all(*clients)
        await state.close()


async def test_sigkill_of_a_worker_mid_burst_moves_its_clients(deployment: ScaledDeployment) -> None:
    """Half the pairs have video when one worker is killed; the other half are still joining. The clients of the
    killed worker's rooms are sent to reconnect, and every pair ends with video on the worker that is left."""
    server = server_of(deployment)
    state = await open_redis_coordination(deployment.redis_url or "")
    names = [f"kill-{i}" for i in range(PAIRS)]
    first = [pair for pair, _ in await asyncio.gather(*(consult_until_video(server, n) for n in names[: PAIRS // 2]))]
    clients = [client for pair in first for client in pair]
    try:
        victim = await worker_of(state.rooms, names[0])
        moved = [n for n in names[: PAIRS // 2] if await worker_of(state.rooms, n) == victim]
        late = [asyncio.create_task(consult_until_video(server, n)) for n in names[PAIRS // 2 :]]
        deployment.kill_worker(victim or "")
        survivor = next(w.worker_id for w in deployment.workers if w.worker_id != victim)
        for name, (customer, agent) in zip(names, first, strict=False):
            if name in moved:  # told to reconnect, as their clients are
                await customer.wait_closed(timeout=DEADLINE_S)
                await agent.wait_closed(timeout=DEADLINE_S)
                assert customer.leave_notice and customer.leave_notice["reconnect"] is True
            else:  # the other worker's pairs are left alone
                assert customer.leave_notice is None and agent.leave_notice is None
        rejoined = await asyncio.gather(*(consult_until_video(server, name) for name in moved))
        second = await asyncio.gather(*late)
        clients += [client for pair, _ in [*rejoined, *second] for client in pair]
        assert len(moved) >= 1 and len(rejoined) == len(moved) and len(second) == PAIRS - PAIRS // 2
        assert [await worker_of(state.rooms, name) for name in names] == [survivor] * PAIRS
    finally:
        await close_all(*clients)
        await state.close()


async def test_a_burst_of_redis_commands_waits_for_a_connection(redis_db_url: str) -> None:
    """More commands in flight than redis-py's default pool (100) wait their turn instead of failing."""
    state = await open_redis_coordination(redis_db_url)
    try:
        results = await asyncio.gather(*(state.rooms.next_seq("pool") for _ in range(300)), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert sorted(results) == list(range(1, 301))  # type: ignore[type-var]
    finally:
        await state.close()


async def test_a_late_worker_keeps_its_rooms_and_clients(deployment: ScaledDeployment) -> None:
    """A worker stopped past its registration's TTL (a stalled event loop) is late, not dead: the room's next
    member joins it there instead of on the other worker (which would split the room), the member already in is
    not sent away, and once the worker runs again the two see each other."""
    server = server_of(deployment)
    state = await open_redis_coordination(deployment.redis_url or "")
    customer = VitrineClient(server.url, server.token("late", "shopper"), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token("late", "agent", Role.AGENT), tracks=av_tracks())
    try:
        await customer.connect(timeout=60)
        await customer.wait_connected(timeout=60)
        worker_id = await worker_of(state.rooms, "late")
        stalled = next(w for w in deployment.workers if w.worker_id == worker_id)
        stalled.proc.send_signal(signal.SIGSTOP)
        try:
            await until(lambda: _lapsed(state, worker_id), "the stopped worker's registration should lapse")
            joining = asyncio.create_task(agent.connect(timeout=60))
            await until(lambda: _members(state.rooms, "late", 2), "the agent should be admitted")
            assert await worker_of(state.rooms, "late") == worker_id  # not placed anew: that splits the room
        finally:
            stalled.proc.send_signal(signal.SIGCONT)
        await joining
        await video_both_ways(customer, agent)
        assert await worker_of(state.rooms, "late") == worker_id
        assert customer.leave_notice is None and agent.leave_notice is None  # nobody was sent away
    finally:
        await close_all(customer, agent)
        await state.close()


async def _lapsed(state: Coordination, worker_id: str | None) -> bool:
    return worker_id is not None and await state.nodes.get(worker_id) is None


async def _members(rooms: RoomStore, name: str, count: int) -> bool:
    return len(await rooms.list_participants(name)) >= count
