"""Redis restarted empty (as compose runs it: no persistence) under a running call, an inspection and a live show.

Scaled mode, as separate processes: a signaling node and a media worker on a Redis of their own, the
records in PostgreSQL (migrated first with ``vitrine db upgrade``, as compose does). Redis is killed
and started again, empty, on the same port. Every process notices (``vitrine.core.state.epoch``): the
worker closes its rooms before it registers again, the signaling node puts back its sessions' rooms
and sends the clients to reconnect. They join again, with tokens that may not create rooms, and get
their media back; no room exists twice; no record is lost. The show and the inspection are recorded on:
each recording ends with a part from before the loss (finalized by the worker as it closed the room,
stopped by nobody) and a part from after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
import redis.asyncio as aioredis

from loadtest.client import VitrineClient
from tests.desk_helpers import make_shop
from tests.durability_helpers import until
from tests.inspect_helpers import CaseFlow
from tests.live_helpers import go_live, join, make_show, viewer_token
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import TEST_SECRET, ProcessGroup, RedisProcess, RunningServer, free_port, make_settings, wait_healthy
from vitrine.core.models import Role, now_ms
from vitrine.core.state import keys
from vitrine.core.wire.live import Show

WAIT_S = 40.0
RECORDED_BYTES = 30_000  # a second or so of the test pattern and its audio


async def _call(server: RunningServer, room: str, create: bool) -> tuple[VitrineClient, VitrineClient]:
    customer = VitrineClient(server.url, server.token(room, "shopper", create=create), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token(room, "ann", Role.AGENT, create=False), tracks=av_tracks())
    await customer.connect()
    await agent.connect()
    for client in (customer, agent):
        tracks = await remote_tracks(client, 2)
        assert len(await receive_frames(tracks["video"], 5)) == 5
    return customer, agent


async def _recording(path: Path) -> None:
    """Until the worker (another process) has written a second or so into this part's file."""
    await until(
        lambda: path.is_file() and path.stat().st_size >= RECORDED_BYTES, f"media in {path.name}", timeout=WAIT_S
    )


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(len(packet.decode()) for packet in container.demux(video=0))


@pytest.mark.postgres
async def test_redis_restarted_empty_under_a_call_and_a_show(tmp_path: Path, pg_database_url: str) -> None:
    redis = RedisProcess.start(tmp_path / "redis")
    port = free_port()
    env = {
        "VITRINE_REDIS_URL": redis.url,
        "VITRINE_API_KEY": "testkey",
        "VITRINE_API_SECRET": TEST_SECRET,
        "VITRINE_RTC_INTERFACES": "127.0.0.1",
        "VITRINE_WORKER_HEARTBEAT_S": "0.5",
        "VITRINE_WORKER_TTL_S": "2",
        "VITRINE_DATABASE_URL": pg_database_url,
        "VITRINE_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "VITRINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "VITRINE_LOG_LEVEL": "warning",
    }
    group = ProcessGroup(env)
    clients: list[VitrineClient] = []
    try:
        subprocess.run([sys.executable, "-m", "vitrine.cli", "db", "upgrade"], env=group.env, check=True, timeout=60)
        group.start("signaling", "--port", str(port))
        group.start("media")
        server = RunningServer(settings=make_settings(port=port), url=f"http://127.0.0.1:{port}")
        await wait_healthy(server.url, group)
        raw = aioredis.from_url(redis.url, decode_responses=True)
        await until(lambda: raw.scard(keys.WORKERS_INDEX), "the worker to register", timeout=WAIT_S)
        await make_shop(server, "acme")
        show = await make_show(server, "shop2")
        console, host_token = await go_live(server, show)
        host = VitrineClient(server.url, host_token, tracks=av_tracks())  # the seller's camera, recorded
        await host.connect()
        viewer = await join(server, await viewer_token(server, show))
        for n in range(3):
            await viewer.send({"type": "chat", "text": f"before {n}"})
        await viewer.expect("log", lambda m: m["entry"].get("text") == "before 2")
        clients[:] = await _call(server, "call-1", create=True)
        case = await CaseFlow.open(server)
        await case.consent()
        clients += await case.on_camera(await case.buyer_token(), WAIT_S)  # admitted: the buyer is being recorded
        clients.append(host)
        recordings = tmp_path / "recordings"
        for owner in (show["id"], case.id):
            await _recording(recordings / f"{owner}.webm.part")

        lost_at = now_ms()
        redis.restart()  # empty: what it held is gone
        for client in clients:
            await client.wait_closed(timeout=WAIT_S)
            assert client.leave_notice and client.leave_notice["reconnect"] is True
            await client.close()
        left = await viewer.expect("leave", timeout=WAIT_S)
        assert left["reconnect"] is True
        await viewer.close()
        assert {f"{owner}.webm" for owner in (show["id"], case.id)} <= {p.name for p in recordings.iterdir()}

        # They come back, with tokens that cannot create the room: it was put back for them. Their media is
        # recorded on, into each recording's part 1.
        clients[:] = await _call(server, "call-1", create=False)
        clients += await case.on_camera(await case.buyer_token(), WAIT_S)
        host = VitrineClient(server.url, host_token, tracks=av_tracks())
        clients.append(host)
        await host.connect(timeout=WAIT_S)
        for owner in (show["id"], case.id):
            await _recording(recordings / f"{owner}.1.webm.part")
        assert await raw.scard(keys.ROOMS_INDEX) >= 1
        room = json.loads(await raw.get(keys.room_key("call-1")))
        assert room["worker_id"] and await raw.hlen(keys.participants_key("call-1")) == 2
        workers = [json.loads(await raw.get(keys.worker_key(w))) for w in await raw.smembers(keys.WORKERS_INDEX)]
        assert len(workers) == 1
        await until(
            lambda: _worker_rooms(raw, "call-1"), "the worker's heartbeat to count the rooms again", timeout=WAIT_S
        )

        viewer = await join(server, await viewer_token(server, show))
        await viewer.send({"type": "history", "after": 0})
        history = await viewer.expect("history")
        assert [e["text"] for e in history["entries"] if e["kind"] == "chat"] == [f"before {n}" for n in range(3)]
        await viewer.send({"type": "chat", "text": "after"})
        await viewer.expect("log", lambda m: m["entry"].get("text") == "after")
        await viewer.close()
        async with case.inspector() as http:  # the case closes with its evidence: both parts of the recording
            ended = await http.post("/v1/inspect/console/end", json={"verdict": "accepted", "comment": ""})
            assert ended.status_code == 200 and ended.json()["state"] == "closed", ended.text
            kinds = [artifact["kind"] for artifact in ended.json()["artifacts"]]
            assert kinds.count("recording") == 2 and {"chat", "notes", "timeline"} <= set(kinds)
            before, after = (a["captured_at_ms"] for a in ended.json()["artifacts"] if a["kind"] == "recording")
            assert before < lost_at < after
        async with server.api() as api:  # the records were never in Redis
            assert (await api.get("/v1/shops/acme")).status_code == 200
            assert (await api.get(f"/v1/shops/shop2/shows/{show['id']}")).json()["state"] == "live"
        ended = await console.post("/v1/live/console/end")  # the show ends with both parts for its replay
        assert ended.status_code == 200, ended.text
        parts = Show.model_validate(ended.json()["show"]).recordings
        assert [part.path for part in parts] == [f"{show['id']}.webm", f"{show['id']}.1.webm"]
        assert parts[0].started_at_ms < lost_at < parts[1].started_at_ms
        assert all(part.duration_ms >= 500 and _video_frames(recordings / part.path) >= 15 for part in parts)
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
