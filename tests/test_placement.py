"""Rooms go to the least-loaded live worker, skip full ones, and move when their worker dies."""

from __future__ import annotations

import asyncio

import pytest

from signaling.placement import ensure_worker
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Room
from vitrine.core.state import Coordination, WorkerNode, open_coordination


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> Coordination:
    url = request.getfixturevalue("redis_db_url") if request.param == "redis" else None
    opened = await open_coordination(Settings(redis_url=url))
    yield opened
    await opened.close()


async def _room(state: Coordination, name: str) -> Room:
    await state.rooms.create_room(Room(name=name))
    room = await state.rooms.get_room(name)
    assert room is not None
    return room


async def test_least_loaded_worker_wins(state: Coordination) -> None:
    await state.nodes.heartbeat(WorkerNode(id="busy", rooms=8, max_rooms=10), ttl_s=30)
    await state.nodes.heartbeat(WorkerNode(id="idle", rooms=1, max_rooms=10), ttl_s=30)
    await state.nodes.heartbeat(WorkerNode(id="full", rooms=2, max_rooms=2), ttl_s=30)
    assert await ensure_worker(state, await _room(state, "a")) == "idle"
    assert (await state.rooms.get_room("a")).worker_id == "idle"


async def test_placement_is_sticky_while_the_worker_lives(state: Coordination) -> None:
    await state.nodes.heartbeat(WorkerNode(id="w1", rooms=5, max_rooms=10), ttl_s=30)
    room = await _room(state, "b")
    assert await ensure_worker(state, room) == "w1"
    await state.nodes.heartbeat(WorkerNode(id="w2", rooms=0, max_rooms=10), ttl_s=30)
    assert await ensure_worker(state, await state.rooms.get_room("b")) == "w1"


async def test_dead_worker_rooms_are_replaced(state: Coordination) -> None:
    await state.nodes.heartbeat(WorkerNode(id="doomed", rooms=0, max_rooms=10), ttl_s=0.3)
    room = await _room(state, "c")
    assert await ensure_worker(state, room) == "doomed"
    await state.nodes.heartbeat(WorkerNode(id="survivor", rooms=3, max_rooms=10), ttl_s=30)
    deadline = asyncio.get_running_loop().time() + 20
    while await state.nodes.get("doomed") is not None:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert await ensure_worker(state, await state.rooms.get_room("c")) == "survivor"


async def test_no_worker_is_a_typed_error(state: Coordination) -> None:
    with pytest.raises(VitrineError) as caught:
        await ensure_worker(state, await _room(state, "d"))
    assert caught.value.code == ErrorCode.NO_MEDIA_WORKER


async def test_a_concurrent_burst_between_heartbeats_spreads_over_workers(state: Coordination) -> None:
    """Placements count until the next heartbeat, atomically, so a join burst does not pile onto one worker."""
    await state.nodes.heartbeat(WorkerNode(id="w1", rooms=0, max_rooms=100), ttl_s=30)
    await state.nodes.heartbeat(WorkerNode(id="w2", rooms=0, max_rooms=100), ttl_s=30)
    rooms = [await _room(state, f"burst-{i}") for i in range(10)]
    chosen = await asyncio.gather(*(ensure_worker(state, room) for room in rooms))
    assert sorted(chosen.count(w) for w in ("w1", "w2")) == [5, 5]
    # A heartbeat that reports the rooms replaces the count: 5 + 0 placed vs 5 + 0 placed.
    await state.nodes.heartbeat(WorkerNode(id="w1", rooms=6, max_rooms=100), ttl_s=30)
    await state.nodes.heartbeat(WorkerNode(id="w2", rooms=5, max_rooms=100), ttl_s=30)
    assert await ensure_worker(state, await _room(state, "after")) == "w2"
