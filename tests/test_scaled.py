"""The same consult with state in a real Redis: in one process, then as separate processes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import redis.asyncio as aioredis

from tests.scaled_helpers import consult_with_media, scaled_env, worker_ids_by_pid
from tests.servers import (
    ProcessGroup,
    RunningServer,
    embedded_server,
    free_port,
    make_settings,
    wait_healthy,
)
from vitrine.core.state.redis_state import open_redis_coordination


async def test_consult_with_redis_state(redis_db_url: str) -> None:
    async with embedded_server(redis_url=redis_db_url) as server:
        customer, agent = await consult_with_media(server, "consult-redis")
        try:
            stats = server.runtime.media_worker.media_stats()
            assert stats["packets_out"] > 0 and stats["decoders_running"] == 0 and stats["encoders_created"] == 0
            client = aioredis.Redis.from_url(redis_db_url, decode_responses=True)
            async with client:
                assert await client.hlen("vitrine:{consult-redis}:participants") == 2
                assert await client.hlen("vitrine:{consult-redis}:tracks") == 4
        finally:
            await customer.close()
            await agent.close()


async def test_separate_processes_and_worker_failover(redis_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = scaled_env(redis_db_url, tmp_path)
    with ProcessGroup(env).running() as group:
        signaling = group.start("signaling", "--port", str(port))
        workers = [group.start("media"), group.start("media")]
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, group)
        state = await open_redis_coordination(redis_db_url)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(await state.nodes.live_workers()) < 2:
                assert asyncio.get_running_loop().time() < deadline, "both workers should register"
                await asyncio.sleep(0.1)
            server = RunningServer(settings=make_settings(port=port), url=url)
            customer, agent = await consult_with_media(server, "consult-procs")

            room = await state.rooms.get_room("consult-procs")
            assert room is not None and room.worker_id
            node = await state.nodes.get(room.worker_id)
            while node is None or node.stats["packets_out"] == 0:  # stats arrive with the next heartbeat
                assert asyncio.get_running_loop().time() < deadline + 30, node
                await asyncio.sleep(0.1)
                node = await state.nodes.get(room.worker_id)
            assert node.stats["decoders_running"] == 0 and node.stats["encoders_created"] == 0

            # Kill the room's worker: clients are told to reconnect, and the room moves.
            victim_id = room.worker_id
            live = {n.id for n in await state.nodes.live_workers()}
            assert victim_id in live
            for proc in workers:
                node_ids = await worker_ids_by_pid(state)
                if node_ids.get(proc.pid) == victim_id:
                    proc.send_signal(signal.SIGKILL)
            await customer.wait_closed(timeout=30)
            await agent.wait_closed(timeout=30)
            assert customer.leave_notice and customer.leave_notice["reconnect"] is True
            await customer.close()
            await agent.close()

            customer, agent = await consult_with_media(server, "consult-procs")
            moved = await state.rooms.get_room("consult-procs")
            assert moved is not None and moved.worker_id not in (None, victim_id)
            await customer.close()
            await agent.close()
        finally:
            await state.close()
        assert signaling.poll() is None
