"""Redis restarted empty (as compose runs it: no persistence) under a running call, an inspection and a live show.

Scaled mode, as separate processes: a signaling node and a media worker on a Redis of their own, the
records in PostgreSQL (migrated first with ``vitrine db upgrade``, as compose does). Redis is killed
and started again, empty, on the same port. Every process notices (``vitrine.state.epoch``): the
worker closes its rooms before it registers again, the signaling node puts back its sessions' rooms
and sends the clients to reconnect. They join again, with tokens that may not create rooms, and get
their media back; no room exists twice; no record is lost.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.desk_helpers import make_shop
from tests.inspect_helpers import CaseFlow
from tests.live_helpers import go_live, join, make_show, viewer_token
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import TEST_SECRET, ProcessGroup, RedisProcess, RunningServer, free_port, make_settings, wait_healthy
from vitrine.client import VitrineClient
from vitrine.models import Role
from vitrine.state import keys

WAIT_S = 40.0


async def _call(server: RunningServer, room: str, create: bool) -> tuple[VitrineClient, VitrineClient]:
    customer = VitrineClient(server.url, server.token(room, "shopper", create=create), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token(room, "ann", Role.AGENT, create=False), tracks=av_tracks())
    await customer.connect()
    await agent.connect()
    for client in (customer, agent):
        tracks = await remote_tracks(client, 2)
        assert len(await receive_frames(tracks["video"], 5)) == 5
    return customer, agent


async def _inspection(case: CaseFlow, buyer_token: str) -> tuple[VitrineClient, VitrineClient]:
    """The inspector's console and the buyer's phone in the case's room, the inspector seeing the buyer."""
    async with case.inspector() as http:
        inspector = VitrineClient(case.server.url, (await http.get("/v1/inspect/console")).json()["join_token"],
                                  tracks=av_tracks())
    buyer = VitrineClient(case.server.url, buyer_token, tracks=av_tracks())
    await inspector.connect()
    joining = asyncio.create_task(buyer.connect(timeout=WAIT_S))
    done, _ = await asyncio.wait({joining, asyncio.create_task(inspector.knocks.get())}, timeout=WAIT_S,
                                 return_when=asyncio.FIRST_COMPLETED)
    knocked = [task for task in done if task is not joining]
    if knocked:  # the first time the buyer knocks; once admitted it goes straight in
        await inspector.send({"type": "admit", "knock": knocked[0].result()["id"]})
    await joining
    video = await inspector.next_remote_track("video", timeout=WAIT_S)
    assert len(await receive_frames(video, 10)) == 10
    return inspector, buyer


async def _until(check, what: str) -> None:  # noqa: ANN001 - an async predicate
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.postgres
async def test_redis_restarted_empty_under_a_call_and_a_show(tmp_path: Path, pg_database_url: str) -> None:
    redis = RedisProcess.start(tmp_path / "redis")
    port = free_port()
    env = {"VITRINE_REDIS_URL": redis.url, "VITRINE_API_KEY": "testkey", "VITRINE_API_SECRET": TEST_SECRET,
           "VITRINE_RTC_INTERFACES": "127.0.0.1", "VITRINE_WORKER_HEARTBEAT_S": "0.5", "VITRINE_WORKER_TTL_S": "2",
           "VITRINE_DATABASE_URL": pg_database_url, "VITRINE_EVIDENCE_DIR": str(tmp_path / "evidence"),
           "VITRINE_RECORDINGS_DIR": str(tmp_path / "recordings"), "VITRINE_LOG_LEVEL": "warning"}
    group = ProcessGroup(env)
    clients: list[VitrineClient] = []
    try:
        subprocess.run([sys.executable, "-m", "vitrine.cli", "db", "upgrade"], env=group.env, check=True, timeout=60)
        group.start("signaling", "--port", str(port))
        group.start("media")
        server = RunningServer(settings=make_settings(port=port), url=f"http://127.0.0.1:{port}")
        await wait_healthy(server.url, group)
        raw = aioredis.from_url(redis.url, decode_responses=True)
        await _until(lambda: raw.scard(keys.WORKERS_INDEX), "the worker to register")
        await make_shop(server, "acme")
        show = await make_show(server, "shop2")
        console, host_token = await go_live(server, show)
        host = await join(server, host_token)
        viewer = await join(server, await viewer_token(server, show))
        for n in range(3):
            await viewer.send({"type": "chat", "text": f"before {n}"})
        await viewer.expect("log", lambda m: m["entry"].get("text") == "before 2")
        clients[:] = await _call(server, "call-1", create=True)
        case = await CaseFlow.open(server)
        await case.consent()
        clients += await _inspection(case, await case.buyer_token())  # admitted: the buyer is being recorded

        redis.restart()  # empty: what it held is gone
        for client in clients:
            await client.wait_closed(timeout=WAIT_S)
            assert client.leave_notice and client.leave_notice["reconnect"] is True
            await client.close()
        for socket in (host, viewer):
            left = await socket.expect("leave", timeout=WAIT_S)
            assert left["reconnect"] is True
            await socket.close()

        # They come back, with tokens that cannot create the room: it was put back for them.
        clients[:] = await _call(server, "call-1", create=False)
        clients += await _inspection(case, await case.buyer_token())
        assert await raw.scard(keys.ROOMS_INDEX) >= 1
        room = json.loads(await raw.get(keys.room_key("call-1")))
        assert room["worker_id"] and await raw.hlen(keys.participants_key("call-1")) == 2
        workers = [json.loads(await raw.get(keys.worker_key(w))) for w in await raw.smembers(keys.WORKERS_INDEX)]
        assert len(workers) == 1
        await _until(lambda: _worker_rooms(raw, "call-1"), "the worker's heartbeat to count the rooms again")

        viewer = await join(server, await viewer_token(server, show))
        await viewer.send({"type": "history", "after": 0})
        history = await viewer.expect("history")
        assert [e["text"] for e in history["entries"] if e["kind"] == "chat"] == [f"before {n}" for n in range(3)]
        await viewer.send({"type": "chat", "text": "after"})
        await viewer.expect("log", lambda m: m["entry"].get("text") == "after")
        await viewer.close()
        async with case.inspector() as http:  # the case closes with its evidence, the recording made before the loss
            ended = await http.post("/v1/inspect/console/end", json={"verdict": "accepted", "comment": ""})
            assert ended.status_code == 200 and ended.json()["state"] == "closed", ended.text
            kinds = [artifact["kind"] for artifact in ended.json()["artifacts"]]
            assert kinds.count("recording") == 1 and {"chat", "notes", "timeline"} <= set(kinds)
        async with server.api() as api:  # the records were never in Redis
            assert (await api.get("/v1/shops/acme")).status_code == 200
            assert (await api.get(f"/v1/shops/shop2/shows/{show['id']}")).json()["state"] == "live"
        await console.aclose()
    except BaseException:
        print(group.output())
        raise
    finally:
        for client in clients:
            await client.close()
        group.stop()
        redis.stop()


async def _worker_rooms(raw: aioredis.Redis, room: str) -> bool:
    node = json.loads(await raw.get(keys.worker_key(next(iter(await raw.smembers(keys.WORKERS_INDEX))))) or "{}")
    return node.get("rooms", 0) >= 1 and node.get("participants", 0) >= 2


