"""A media worker drains for a rolling upgrade (``media/drain.py``): on SIGTERM as a separate process on a real
Redis, and on the operator's ``POST /v1/workers/{id}/drain`` in an embedded server."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from tests.scaled_helpers import consult_with_media, scaled_env, worker_ids_by_pid
from tests.servers import (
    ProcessGroup,
    RunningServer,
    embedded_server,
    free_port,
    make_settings,
    wait_healthy,
)
from vitrine.core.state.nodes import WorkerState
from vitrine.core.state.redis_state import open_redis_coordination

DRAIN_TIMEOUT_S = 20
WORKER_TTL_S = 3  # a drained worker stays registered, draining, this long after its rooms emptied
T = TypeVar("T")


async def _until(probe: Callable[[], Awaitable[T]], what: str, timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await probe()):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)
    return value


async def test_sigterm_drains_a_worker_and_its_calls_move(redis_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = scaled_env(
        redis_db_url, None, VITRINE_WORKER_TTL_S=str(WORKER_TTL_S), VITRINE_DRAIN_TIMEOUT_S=str(DRAIN_TIMEOUT_S)
    )
    with ProcessGroup(env).running() as group:
        for i, args in enumerate([("signaling", "--port", str(port)), ("media",), ("media",)]):
            group.env.update(
                {
                    "VITRINE_DATA_DIR": str(tmp_path / f"data{i}"),
                    "VITRINE_EVIDENCE_DIR": str(tmp_path / f"evidence{i}"),
                    "VITRINE_RECORDINGS_DIR": str(tmp_path / f"recordings{i}"),
                }
            )
            group.start(*args)
        signaling, workers = group.procs[0], group.procs[1:]
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, group)
        state = await open_redis_coordination(redis_db_url)
        try:

            async def both_registered() -> bool:
                return len(await state.nodes.live_workers()) == 2

            await _until(both_registered, "both workers should register")
            server = RunningServer(settings=make_settings(port=port), url=url)
            customer, agent = await consult_with_media(server, "drain-a")
            room = await state.rooms.get_room("drain-a")
            assert room is not None and room.worker_id
            drained_id = room.worker_id
            by_pid = await _until(lambda: _pids_of_both(state), "both workers should report their pid")
            drained = next(proc for proc in workers if by_pid.get(proc.pid) == drained_id)
            other_id = next(worker_id for worker_id in by_pid.values() if worker_id != drained_id)

            drained.send_signal(signal.SIGTERM)

            async def announced() -> bool:
                node = await state.nodes.get(drained_id)
                return node is not None and node.state == WorkerState.DRAINING

            await _until(announced, "the worker should announce that it drains", timeout=10)
            # A call that starts during the drain is placed on the other worker.
            second = asyncio.create_task(consult_with_media(server, "drain-b"))

            async def placed() -> str | None:
                record = await state.rooms.get_room("drain-b")
                return record.worker_id if record else None

            assert await _until(placed, "the second call should be placed") == other_id
            assert await announced(), "the drained worker should still be draining when the second call is placed"
            second_clients = await asyncio.wait_for(second, 60)

            # The first call's clients are sent to reconnect; they do, and the room is on the other worker now.
            for client in (customer, agent):
                await client.wait_closed(timeout=30)
                assert client.leave_notice and client.leave_notice["reconnect"] is True, client.leave_notice
                await client.close()
            customer, agent = await consult_with_media(server, "drain-a")
            moved = await state.rooms.get_room("drain-a")
            assert moved is not None and moved.worker_id == other_id

            # The drained worker exits 0 within the bound, deregistered.
            code = await asyncio.to_thread(drained.wait, DRAIN_TIMEOUT_S + 10)
            assert code == 0
            assert await state.nodes.get(drained_id) is None
            assert [node.id for node in await state.nodes.live_workers()] == [other_id]
            for client in (customer, agent, *second_clients):
                await client.close()
        finally:
            await state.close()
        assert signaling.poll() is None


async def _pids_of_both(state) -> dict[int, str]:  # noqa: ANN001
    by_pid = await worker_ids_by_pid(state)
    return by_pid if len(by_pid) == 2 and 0 not in by_pid else {}


async def test_api_drains_the_embedded_worker() -> None:
    async with embedded_server() as server:
        runtime = server.runtime
        assert runtime is not None and runtime.media_worker is not None
        worker_id = runtime.media_worker.id
        customer, agent = await consult_with_media(server, "drain-api")
        async with server.api() as api:
            listed = (await api.get("/v1/workers")).json()
            assert [(w["id"], w["state"]) for w in listed] == [(worker_id, "serving")]
            async with server.api() as anonymous:
                anonymous.auth = None
                assert (await anonymous.post(f"/v1/workers/{worker_id}/drain")).status_code == 401
            missing = await api.post("/v1/workers/nobody/drain")
            assert missing.status_code == 404 and missing.json()["code"] == "worker_not_found"

            answer = await api.post(f"/v1/workers/{worker_id}/drain")
            assert answer.status_code == 202 and answer.json()["state"] == "draining"
            for client in (customer, agent):
                await client.wait_closed(timeout=30)
                assert client.leave_notice and client.leave_notice["reconnect"] is True, client.leave_notice
                await client.close()

            async def participants_gone() -> bool:
                return not await runtime.state.rooms.list_participants("drain-api")

            await _until(participants_gone, "the drained room's participants should have left")

            async def stopped() -> bool:
                return runtime.media_worker.state == WorkerState.STOPPED

            await _until(stopped, "the worker should stop once its rooms stayed empty")
            assert await runtime.state.nodes.live_workers() == []
            assert (await api.get("/healthz")).status_code == 503
