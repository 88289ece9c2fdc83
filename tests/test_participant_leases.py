"""A signaling node that vanishes takes its participants with it (``vitrine.core.state.leases``).

Scaled mode as separate processes on a real Redis: two signaling nodes, A and B, and a media worker. Clients
join a room of capacity three through A and B. A is killed with SIGKILL: nobody is left to remove its
participants, so only their leases can. Within the lease they leave the room (B's REST API lists only B's
client), B's client hears each leave and each unpublished track, the worker frees their peers, and the full
room takes new joins again. A node that was only paused longer than the lease (SIGSTOP) finds its sessions
expired when it resumes, and sends them to reconnect instead of serving them on.

The stores themselves (memory and Redis alike) are checked first: what ``expire`` takes and what ``renew`` keeps.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from loadtest.client import VitrineClient
from tests.durability_helpers import until
from tests.media_helpers import av_tracks
from tests.scaled_helpers import scaled_env
from tests.servers import ProcessGroup, RunningServer, free_port, make_settings, wait_healthy
from vitrine.core.config import Settings
from vitrine.core.models import Grants, Participant, Role, Room
from vitrine.core.state import keys, open_coordination
from vitrine.core.state.coordination import Coordination
from vitrine.core.state.redis_state import open_redis_coordination

ROOM = "leases"
LEASE_S = 3.0
WAIT_S = 30.0


SHORT_S = 0.3  # a store test's lease


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Coordination]:
    if request.param == "memory":
        state = await open_coordination(Settings())
    else:
        state = await open_redis_coordination(request.getfixturevalue("redis_db_url"))
    await state.rooms.create_room(Room(name=ROOM, max_participants=3))
    try:
        yield state
    finally:
        await state.close()


def _person(identity: str, sid: str) -> Participant:
    return Participant(sid=sid, identity=identity, role=Role.CUSTOMER, grants=Grants())


async def _expire_while_renewing(state: Coordination, renewed: list[str]) -> list[str]:
    """Sweep until something expires, renewing ``renewed`` all along; the sids that expired."""

    async def swept() -> bool:
        assert await state.leases.renew(ROOM, renewed, SHORT_S) == []
        expired.extend(p.sid for p in await state.leases.expire(ROOM))
        return bool(expired)

    expired: list[str] = []
    await until(swept, "a lease to run out", timeout=10)
    return sorted(expired)


async def test_only_unrenewed_leases_expire_and_free_their_place(store: Coordination) -> None:
    rooms = store.rooms
    for identity in ("kept", "lapsed", "other"):
        await rooms.add_participant(ROOM, _person(identity, f"PA_{identity}"), 3, lease_s=SHORT_S)
    assert await _expire_while_renewing(store, ["PA_kept", "PA_other"]) == ["PA_lapsed"]
    assert sorted(p.sid for p in await rooms.list_participants(ROOM)) == ["PA_kept", "PA_other"]
    assert not await rooms.has_identity(ROOM, "lapsed")
    assert await store.leases.renew(ROOM, ["PA_kept", "PA_lapsed"], SHORT_S) == ["PA_lapsed"]  # never put back
    await rooms.add_participant(ROOM, _person("newcomer", "PA_new"), 3, lease_s=SHORT_S)  # its place is free
    assert await store.leases.expire(ROOM) == []  # every lease is fresh


async def test_a_replaced_or_removed_participant_takes_its_lease_along(store: Coordination) -> None:
    rooms = store.rooms
    await rooms.add_participant(ROOM, _person("alice", "PA_old"), 3, lease_s=SHORT_S)
    await rooms.add_participant(ROOM, _person("bob", "PA_bob"), 3, lease_s=SHORT_S)
    outcome = await rooms.add_participant(ROOM, _person("alice", "PA_new"), 3, lease_s=60)
    assert outcome.replaced is not None and outcome.replaced.sid == "PA_old"
    await rooms.remove_participant(ROOM, "PA_bob")
    await rooms.add_participant(ROOM, _person("carol", "PA_carol"), 3, lease_s=SHORT_S)
    assert await _expire_while_renewing(store, []) == ["PA_carol"]  # neither PA_old nor PA_bob comes back
    assert [p.sid for p in await rooms.list_participants(ROOM)] == ["PA_new"]
    assert await rooms.has_identity(ROOM, "alice")


@pytest.mark.redis
async def test_a_lease_lost_on_its_own_is_renewed_and_a_deleted_room_takes_its_leases(redis_db_url: str) -> None:
    state = await open_redis_coordination(redis_db_url)
    raw = aioredis.from_url(redis_db_url, decode_responses=True)
    try:
        await state.rooms.create_room(Room(name=ROOM, max_participants=3))
        await state.rooms.add_participant(ROOM, _person("alice", "PA_a"), 3, lease_s=60)
        assert await raw.zscore(keys.leases_key(ROOM), "PA_a") is not None
        await raw.delete(keys.leases_key(ROOM))
        assert await state.leases.renew(ROOM, ["PA_a"], 60) == []
        assert await raw.zscore(keys.leases_key(ROOM), "PA_a") is not None
        await state.rooms.delete_room(ROOM)
        assert not await raw.exists(keys.leases_key(ROOM))
    finally:
        await raw.aclose()
        await state.close()


@dataclass
class Cluster:
    group: ProcessGroup
    node_a: subprocess.Popen[bytes]
    a: RunningServer
    b: RunningServer
    state: Coordination


@pytest.fixture
async def cluster(redis_db_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    port_a, port_b = free_port(), free_port()
    env = scaled_env(
        redis_db_url,
        tmp_path,  # one SQLite file, shared by both nodes
        VITRINE_PARTICIPANT_LEASE_S=str(LEASE_S),
        VITRINE_PARTICIPANT_LEASE_RENEW_S="0.5",
    )
    with ProcessGroup(env).running() as group:
        node_a = group.start("signaling", "--port", str(port_a))
        a = RunningServer(settings=make_settings(port=port_a), url=f"http://127.0.0.1:{port_a}")
        group.start("media")
        await wait_healthy(a.url, group)  # healthy: a worker is live, and A has migrated the shared database
        group.start("signaling", "--port", str(port_b))
        b = RunningServer(settings=make_settings(port=port_b), url=f"http://127.0.0.1:{port_b}")
        await wait_healthy(b.url, group)
        state = await open_redis_coordination(redis_db_url)
        try:
            yield Cluster(group=group, node_a=node_a, a=a, b=b, state=state)
        finally:
            await state.close()


async def _identities(api: httpx.AsyncClient) -> list[str]:
    detail = (await api.get(f"/v1/rooms/{ROOM}")).raise_for_status().json()
    return sorted(p["identity"] for p in detail["participants"])


async def _worker_participants(state: Coordination) -> int:
    return sum(node.participants for node in await state.nodes.live_workers())


def _events(client: VitrineClient, kind: str) -> list[str]:
    return sorted(
        (e.get("participant") or {}).get("identity") or (e.get("track") or {}).get("participant_sid", "")
        for e in client.events
        if e["event"] == kind
    )


async def test_a_killed_nodes_participants_expire_and_free_the_room(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    async with b.api() as api:
        (await api.post("/v1/rooms", json={"name": ROOM, "max_participants": 3})).raise_for_status()
        watcher = VitrineClient(b.url, b.token(ROOM, "watcher", create=False))
        publisher = VitrineClient(a.url, a.token(ROOM, "on-a-publisher", create=False), tracks=av_tracks())
        quiet = VitrineClient(a.url, a.token(ROOM, "on-a-quiet", create=False))
        late = [VitrineClient(b.url, b.token(ROOM, f"late-{i}", create=False)) for i in range(3)]
        try:
            await watcher.connect()
            joined = await publisher.connect()
            await quiet.connect()
            publisher_sid = joined["participant"]["sid"]
            await until(lambda: len(_events(watcher, "track_published")) == 2, "the publisher's two tracks")
            assert await _identities(api) == ["on-a-publisher", "on-a-quiet", "watcher"]
            with pytest.raises(ConnectionError, match="room_full"):
                await late[0].connect()

            async def worker_counts(count: int) -> bool:
                return await _worker_participants(cluster.state) == count

            await until(lambda: worker_counts(3), "the worker's heartbeat to count all three")

            cluster.node_a.send_signal(signal.SIGKILL)
            cluster.node_a.wait(10)

            async def only_watcher() -> bool:
                return await _identities(api) == ["watcher"]

            await until(only_watcher, "node A's participants to expire", timeout=WAIT_S)
            await until(lambda: len(_events(watcher, "participant_left")) == 2, "both leaves", timeout=WAIT_S)
            assert _events(watcher, "participant_left") == ["on-a-publisher", "on-a-quiet"]
            await until(lambda: len(_events(watcher, "track_unpublished")) == 2, "both tracks unpublished")
            assert _events(watcher, "track_unpublished") == [publisher_sid, publisher_sid]
            # An expired participant leaves the store first and its tracks once its worker freed it (the
            # unpublish events above come after that): by now the room lists none.
            assert (await api.get(f"/v1/rooms/{ROOM}")).json()["tracks"] == []

            await until(lambda: worker_counts(1), "the worker to free node A's peers", timeout=WAIT_S)

            late = [VitrineClient(b.url, b.token(ROOM, f"late-{i}", create=False)) for i in range(3)]
            await late[0].connect()
            await late[1].connect()
            assert await _identities(api) == ["late-0", "late-1", "watcher"]
            with pytest.raises(ConnectionError, match="room_full"):
                await late[2].connect()
        finally:
            for client in (watcher, publisher, quiet, *late):
                await client.close()


async def test_a_paused_node_sends_its_expired_sessions_to_reconnect(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    async with b.api() as api:
        (await api.post("/v1/rooms", json={"name": ROOM, "max_participants": 2})).raise_for_status()
        watcher = VitrineClient(b.url, b.token(ROOM, "watcher", create=False))
        paused = VitrineClient(a.url, a.token(ROOM, "on-a", create=False))
        newcomer = VitrineClient(b.url, b.token(ROOM, "newcomer", create=False))
        try:
            await watcher.connect()
            await paused.connect()
            cluster.node_a.send_signal(signal.SIGSTOP)
            try:

                async def expired() -> bool:
                    return await _identities(api) == ["watcher"]

                await until(expired, "the paused node's participant to expire", timeout=WAIT_S)
                await newcomer.connect()  # its place is free while A sleeps
            finally:
                cluster.node_a.send_signal(signal.SIGCONT)
            await paused.wait_closed(timeout=WAIT_S)
            assert paused.leave_notice is not None and paused.leave_notice["reconnect"] is True
            assert await _identities(api) == ["newcomer", "watcher"]  # A put nothing back
            assert _events(watcher, "participant_left") == ["on-a"]
            async with httpx.AsyncClient() as http:  # A lives on, and serves
                assert (await http.get(f"{a.url}/healthz")).status_code == 200
        finally:
            for client in (watcher, paused, newcomer):
                await client.close()
