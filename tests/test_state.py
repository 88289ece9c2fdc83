"""Contract tests: the memory and Redis coordination stores must behave the same."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Grants, Participant, Role, Room, Track, TrackKind
from vitrine.core.state import Coordination, WorkerNode, keys, open_coordination
from vitrine.core.state.redis_state import open_redis_coordination

DEADLINE_S = 10.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[Coordination]:
    if request.param == "memory":
        st = await open_coordination(Settings())
    else:
        st = await open_redis_coordination(request.getfixturevalue("redis_db_url"))
    try:
        yield st
    finally:
        await st.close()


@pytest.fixture
async def redis_state(redis_db_url: str) -> AsyncIterator[tuple[Coordination, aioredis.Redis]]:
    """The Redis state plus a raw client on the same database, to inspect keys."""
    st = await open_redis_coordination(redis_db_url)
    raw = aioredis.from_url(redis_db_url, decode_responses=True)
    try:
        yield st, raw
    finally:
        await raw.aclose()
        await st.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after a generous deadline."""
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s}s waiting for: {what}")
        await asyncio.sleep(0.02)


def person(identity: str, sid: str | None = None) -> Participant:
    return Participant(
        sid=sid or f"PA_{uuid.uuid4().hex[:10]}",
        identity=identity,
        role=Role.CUSTOMER,
        grants=Grants(can_publish=True, can_subscribe=True),
    )


def channel_name() -> str:
    # Pub/sub channels are shared by every database of a server: keep them unique per test.
    return f"test:{uuid.uuid4().hex}"


# Rooms


async def test_room_create_get_list_delete(state: Coordination) -> None:
    rooms = state.rooms
    assert await rooms.create_room(Room(name="shop-1", max_participants=3))
    assert await rooms.create_room(Room(name="shop-2"))
    assert not await rooms.create_room(Room(name="shop-1", max_participants=9))

    got = await rooms.get_room("shop-1")
    assert got is not None and got.max_participants == 3 and got.worker_id is None
    assert await rooms.get_room("nope") is None
    assert sorted(r.name for r in await rooms.list_rooms()) == ["shop-1", "shop-2"]

    await rooms.set_room_worker("shop-1", "worker-a")
    assert (await rooms.get_room("shop-1")).worker_id == "worker-a"
    await rooms.set_room_worker("shop-1", None)
    assert (await rooms.get_room("shop-1")).worker_id is None
    await rooms.set_room_worker("ghost", "worker-a")  # no room: no-op, not created
    assert await rooms.get_room("ghost") is None

    await rooms.add_participant("shop-1", person("alice"), 3)
    await rooms.add_track("shop-1", Track(sid="TR_1", participant_sid="PA_x", kind=TrackKind.VIDEO))
    await rooms.next_seq("shop-1")

    deleted = await rooms.delete_room("shop-1")
    assert deleted is not None and deleted.name == "shop-1"
    assert await rooms.get_room("shop-1") is None
    assert [r.name for r in await rooms.list_rooms()] == ["shop-2"]
    assert await rooms.list_participants("shop-1") == []
    assert await rooms.list_tracks("shop-1") == []
    assert await rooms.current_seq("shop-1") == 0
    assert await rooms.delete_room("shop-1") is None

    assert await rooms.create_room(Room(name="shop-1"))  # the name is free again


async def test_redis_delete_room_removes_all_keys(redis_state: tuple[Coordination, aioredis.Redis]) -> None:
    st, raw = redis_state
    await st.rooms.create_room(Room(name="r1"))
    await st.rooms.add_participant("r1", person("alice"), 5)
    await st.rooms.add_track("r1", Track(sid="TR_1", participant_sid="PA_x", kind=TrackKind.AUDIO))
    await st.rooms.next_seq("r1")
    await st.rooms.add_relay("r1", "worker-2")
    await st.rooms.add_knock("r1", "KN_1", "{}")
    room_keys = await raw.keys("vitrine:{r1}:*")
    assert set(room_keys) == set(keys.room_keys("r1"))  # every key of the room carries its hash tag
    assert await raw.smembers(keys.ROOMS_INDEX) == {"r1"}

    await st.rooms.delete_room("r1")
    assert await raw.keys("vitrine:{r1}:*") == []
    assert await raw.smembers(keys.ROOMS_INDEX) == set()


async def test_redis_list_rooms_prunes_stale_index_entries(redis_state: tuple[Coordination, aioredis.Redis]) -> None:
    st, raw = redis_state
    await st.rooms.create_room(Room(name="live"))
    await raw.sadd(keys.ROOMS_INDEX, "crashed")  # as if a node died between writes
    assert [r.name for r in await st.rooms.list_rooms()] == ["live"]
    assert await raw.smembers(keys.ROOMS_INDEX) == {"live"}


# Participants


async def test_add_participant_cap(state: Coordination) -> None:
    rooms = state.rooms
    await rooms.add_participant("r", person("alice"), 2)
    await rooms.add_participant("r", person("bob"), 2)
    with pytest.raises(VitrineError) as err:
        await rooms.add_participant("r", person("carol"), 2)
    assert err.value.code == ErrorCode.ROOM_FULL
    assert sorted(p.identity for p in await rooms.list_participants("r")) == ["alice", "bob"]


async def test_same_identity_replaces_older_session(state: Coordination) -> None:
    rooms = state.rooms
    first = person("alice", "PA_1")
    assert (await rooms.add_participant("r", first, 2)).replaced is None
    await rooms.add_participant("r", person("bob", "PA_2"), 2)

    # The room is full, but a rejoin replaces rather than adds.
    outcome = await rooms.add_participant("r", person("alice", "PA_3"), 2)
    assert outcome.replaced == first
    assert sorted(p.sid for p in await rooms.list_participants("r")) == ["PA_2", "PA_3"]
    assert await rooms.get_participant("r", "PA_1") is None
    assert (await rooms.get_participant("r", "PA_3")).identity == "alice"

    # Removing the replaced session is a no-op; removing the live one frees the identity.
    assert await rooms.remove_participant("r", "PA_1") is None
    assert (await rooms.remove_participant("r", "PA_3")).sid == "PA_3"
    assert await rooms.remove_participant("r", "PA_3") is None
    assert (await rooms.add_participant("r", person("alice", "PA_4"), 2)).replaced is None
    with pytest.raises(VitrineError):
        await rooms.add_participant("r", person("carol"), 2)


async def test_concurrent_joins_never_exceed_cap(state: Coordination) -> None:
    async def join(i: int) -> bool:
        try:
            await state.rooms.add_participant("busy", person(f"user-{i}"), 5)
            return True
        except VitrineError as exc:
            assert exc.code == ErrorCode.ROOM_FULL
            return False

    admitted = await asyncio.gather(*(join(i) for i in range(20)))
    assert sum(admitted) == 5
    assert len(await state.rooms.list_participants("busy")) == 5


async def test_concurrent_joins_across_connections(redis_db_url: str) -> None:
    """Two processes' worth of clients racing for the same room still admit exactly the cap."""
    nodes = [await open_redis_coordination(redis_db_url) for _ in range(2)]
    try:

        async def join(i: int) -> bool:
            try:
                await nodes[i % 2].rooms.add_participant("busy", person(f"user-{i}"), 5)
                return True
            except VitrineError:
                return False

        assert sum(await asyncio.gather(*(join(i) for i in range(20)))) == 5
        assert len(await nodes[0].rooms.list_participants("busy")) == 5
    finally:
        for node in nodes:
            await node.close()


# Tracks and sequence


async def test_tracks(state: Coordination) -> None:
    rooms = state.rooms
    video = Track(sid="TR_v", participant_sid="PA_1", kind=TrackKind.VIDEO)
    audio = Track(sid="TR_a", participant_sid="PA_1", kind=TrackKind.AUDIO, codec="opus")
    await rooms.add_track("r", video)
    await rooms.add_track("r", audio)
    assert sorted(await rooms.list_tracks("r"), key=lambda t: t.sid) == [audio, video]
    assert await rooms.remove_track("r", "TR_v") == video
    assert await rooms.remove_track("r", "TR_v") is None
    assert await rooms.list_tracks("r") == [audio]
    assert await rooms.list_tracks("other") == []


async def test_next_seq_strictly_increasing_under_concurrency(state: Coordination) -> None:
    assert await state.rooms.current_seq("r") == 0
    values = await asyncio.gather(*(state.rooms.next_seq("r") for _ in range(50)))
    assert sorted(values) == list(range(1, 51))
    assert await state.rooms.current_seq("r") == 50
    assert await state.rooms.next_seq("r") == 51
    assert await state.rooms.current_seq("other") == 0


# Locks


async def test_lock_exclusive_and_compare_and_delete(state: Coordination) -> None:
    locks = state.locks
    token = await locks.acquire("room-a", 30_000)
    assert token
    assert await locks.acquire("room-a", 30_000) is None
    assert await locks.acquire("room-b", 30_000)  # locks are independent

    assert not await locks.release("room-a", "not-the-token")
    assert await locks.acquire("room-a", 30_000) is None  # still held
    assert await locks.release("room-a", token)
    assert not await locks.release("room-a", token)  # already released

    again = await locks.acquire("room-a", 30_000)
    assert again and again != token


async def test_expired_lock_can_be_retaken(state: Coordination) -> None:
    locks = state.locks
    stale = await locks.acquire("room-a", 200)
    assert stale
    fresh: list[str] = []

    async def retaken() -> bool:
        token = await locks.acquire("room-a", 30_000)
        if token:
            fresh.append(token)
        return token is not None

    await eventually(retaken, "the expired lock to be free")
    # The old holder cannot release the new holder's lock.
    assert not await locks.release("room-a", stale)
    assert await locks.acquire("room-a", 30_000) is None
    assert await locks.release("room-a", fresh[0])


# Node registry


async def test_node_registry_ttl(state: Coordination) -> None:
    nodes = state.nodes
    before = int(time.time() * 1000)
    await nodes.heartbeat(WorkerNode(id="w-short", rooms=1, max_rooms=10), ttl_s=0.3)
    await nodes.heartbeat(WorkerNode(id="w-long", max_rooms=10), ttl_s=60)

    short = await nodes.get("w-short")
    assert short is not None and short.rooms == 1 and short.heartbeat_ms >= before
    assert sorted(n.id for n in await nodes.live_workers()) == ["w-long", "w-short"]

    async def gone() -> bool:
        return await nodes.get("w-short") is None and [n.id for n in await nodes.live_workers()] == ["w-long"]

    await eventually(gone, "w-short to expire")

    await nodes.remove("w-long")
    assert await nodes.get("w-long") is None
    assert await nodes.live_workers() == []
    await nodes.remove("w-long")  # idempotent


async def test_redis_live_workers_cleans_index(redis_state: tuple[Coordination, aioredis.Redis]) -> None:
    st, raw = redis_state
    await st.nodes.heartbeat(WorkerNode(id="w1"), ttl_s=0.3)
    await st.nodes.heartbeat(WorkerNode(id="w2"), ttl_s=60)
    assert await raw.pttl(keys.worker_key("w1")) > 0

    async def w1_expired() -> bool:
        return not await raw.exists(keys.worker_key("w1"))

    await eventually(w1_expired, "w1's record to expire")
    assert await raw.smembers(keys.WORKERS_INDEX) == {"w1", "w2"}
    assert [n.id for n in await st.nodes.live_workers()] == ["w2"]
    assert await raw.smembers(keys.WORKERS_INDEX) == {"w2"}


# Event bus


class Inbox:
    def __init__(self, fail_on: str | None = None) -> None:
        self.messages: list[str] = []
        self.fail_on = fail_on

    async def __call__(self, message: str) -> None:
        self.messages.append(message)
        if message == self.fail_on:
            raise RuntimeError("handler failure (expected by the test)")

    async def wait_for(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.messages) >= count

        await eventually(enough, f"{count} messages (got {len(self.messages)})")


async def test_bus_delivers_in_order(state: Coordination) -> None:
    channel = channel_name()
    inbox = Inbox()
    sub = await state.bus.subscribe(channel, inbox)
    # No wait between subscribe and publish: subscribe returns once it is in effect.
    receivers = [await state.bus.publish(channel, f"m{i}") for i in range(100)]
    assert receivers == [1] * 100
    await inbox.wait_for(100)
    assert inbox.messages == [f"m{i}" for i in range(100)]
    await sub.close()


async def test_bus_subscribe_many_channels_concurrently(state: Coordination) -> None:
    channels = [channel_name() for _ in range(10)]
    inboxes = [Inbox() for _ in channels]
    subs = await asyncio.gather(*(state.bus.subscribe(c, i) for c, i in zip(channels, inboxes)))
    for channel in channels:
        assert await state.bus.publish(channel, channel) == 1
    for channel, inbox in zip(channels, inboxes):
        await inbox.wait_for(1)
        assert inbox.messages == [channel]
    await asyncio.gather(*(sub.close() for sub in subs))
    assert await state.bus.publish(channels[0], "late") == 0


async def test_bus_handler_error_does_not_stop_delivery(state: Coordination) -> None:
    channel = channel_name()
    inbox = Inbox(fail_on="boom")
    await state.bus.subscribe(channel, inbox)
    for message in ["before", "boom", "after-1", "after-2"]:
        # The memory bus runs handlers inside publish, so the failure surfaces there;
        # the Redis bus logs it. Either way, later messages must still arrive.
        with contextlib.suppress(RuntimeError):
            await state.bus.publish(channel, message)
    await inbox.wait_for(4)
    assert inbox.messages == ["before", "boom", "after-1", "after-2"]


async def test_redis_bus_logs_handler_errors(
    redis_state: tuple[Coordination, aioredis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    st, _ = redis_state
    channel = channel_name()
    inbox = Inbox(fail_on="boom")
    await st.bus.subscribe(channel, inbox)
    await st.bus.publish(channel, "boom")
    await st.bus.publish(channel, "ok")
    await inbox.wait_for(2)
    assert any("event handler failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_bus_subscription_close_stops_delivery(state: Coordination) -> None:
    channel = channel_name()
    first, second = Inbox(), Inbox()
    sub1 = await state.bus.subscribe(channel, first)
    sub2 = await state.bus.subscribe(channel, second)
    await state.bus.publish(channel, "both")
    await first.wait_for(1)
    await second.wait_for(1)

    await sub1.close()
    await state.bus.publish(channel, "second-only")
    await second.wait_for(2)
    assert second.messages == ["both", "second-only"]

    await sub2.close()
    assert await state.bus.publish(channel, "nobody") == 0
    await sub2.close()  # idempotent

    # A marker on a fresh subscription proves nothing else was still in flight.
    marker = Inbox()
    sub3 = await state.bus.subscribe(channel, marker)
    await state.bus.publish(channel, "marker")
    await marker.wait_for(1)
    assert first.messages == ["both"]
    assert second.messages == ["both", "second-only"]
    assert marker.messages == ["marker"]
    await sub3.close()


async def test_redis_subscribe_waits_for_server_confirmation(redis_state: tuple[Coordination, aioredis.Redis]) -> None:
    """While the server holds every command, subscribe cannot have been confirmed, so it must not return."""
    st, raw = redis_state
    await st.bus.subscribe(channel_name(), Inbox())  # connect the pub/sub connection first
    channel, inbox = channel_name(), Inbox()
    started = time.monotonic()  # before the pause: the pause surely ends >= 0.3 s after this
    await raw.execute_command("CLIENT", "PAUSE", 300, "ALL")
    await st.bus.subscribe(channel, inbox)
    assert time.monotonic() - started >= 0.25  # a lower bound only: a slow machine cannot break it
    assert await raw.pubsub_numsub(channel) == [(channel, 1)]


async def test_a_loop_sending_to_redis_always_hears_its_cancellation(redis_db_url: str) -> None:
    """A task cancelled while it sends to Redis stops (vitrine/core/state/redis_util.py: no socket timeout, so no
    ``asyncio.wait_for`` around each send, which on Python 3.11 can swallow the cancellation and leave a shutdown
    waiting on a heartbeat loop forever). Before the fix, some of these cancels were lost within the first 40."""
    state = await open_redis_coordination(redis_db_url)
    node = WorkerNode(id="cancel-probe-media", max_rooms=1)

    async def beat_forever() -> None:
        while True:
            await state.nodes.heartbeat(node, 5.0)
            await state.epoch.current()

    try:
        for _ in range(200):
            task = asyncio.create_task(beat_forever())
            await asyncio.sleep(0)  # let it start sending
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=10.0)
            assert done == {task} and task.cancelled()
    finally:
        await state.close()
