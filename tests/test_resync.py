"""A client that misses room events catches up with ``resync`` (``vitrine.core.wire.rtc.ResyncRequest``).

A real server (embedded, with coordination in memory or in a real Redis) and the Python client
(``loadtest/client.py``). Events are lost where they would be in production: on the way through the event bus.
``LossyBus`` (tests/resync_helpers.py) drops the room events a test names as they are published, so no session
on any node hears them, while the room's state changes as usual. The next event that gets through shows the
client a gap in ``seq``; it waits for the missing one, asks ``resync``, and ends with the room's real
participants and tracks, having announced what the gap hid. A ``seq`` going back (the numbering restarted)
resyncs too, and resyncs are rate-limited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loadtest.client import VitrineClient
from loadtest.desk import DeskClient
from signaling.session import RESYNC_BURST
from tests.durability_helpers import until
from tests.media_helpers import av_tracks
from tests.resync_helpers import LossyBus, about, joins
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import ParticipantView, Role
from vitrine.core.state import keys
from vitrine.core.wire.rtc import RoomEvent

ROOM = "resync"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def lossy(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RunningServer, LossyBus]]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as server:
        assert server.runtime is not None
        yield server, LossyBus(server.runtime.state.bus, ROOM)


async def _room(server: RunningServer) -> tuple[set[str], set[str]]:
    """The participants' identities and the tracks' sids, as the server's REST API lists them."""
    async with server.api() as api:
        detail = (await api.get(f"/v1/rooms/{ROOM}")).raise_for_status().json()
    return {p["identity"] for p in detail["participants"]}, {t["sid"] for t in detail["tracks"]}


def _mirror(client: VitrineClient) -> tuple[set[str], set[str]]:
    assert client.room is not None
    return {p["identity"] for p in client.room.participants.values()}, set(client.room.tracks)


def _resynced(client: VitrineClient, kind: str) -> list[str]:
    return sorted(
        (e.get("participant") or {}).get("identity") or e["track"]["sid"]
        for e in client.events
        if e.get("resync") and e["event"] == kind
    )


async def test_lost_joins_and_leaves_are_caught_up(lossy: tuple[RunningServer, LossyBus]) -> None:
    server, bus = lossy
    alice = VitrineClient(server.url, server.token(ROOM, "alice"))
    bob = VitrineClient(server.url, server.token(ROOM, "bob", create=False), tracks=av_tracks())
    carol = VitrineClient(server.url, server.token(ROOM, "carol", Role.AGENT, create=False))
    try:
        await alice.connect()
        bus.drop = joins
        bob_sid = (await bob.connect())["participant"]["sid"]
        await bob.wait_connected()

        async def bobs_tracks_stored() -> bool:
            return len((await _room(server))[1]) == 2

        await until(bobs_tracks_stored, "bob's two tracks in the room")
        assert bus.dropped == 3 and alice.resyncs == 0
        bus.drop = lambda e: False
        await carol.connect()  # its join is the next seq alice sees: a gap of three

        await until(lambda: _mirror(alice)[0] == {"alice", "bob", "carol"}, "alice to resync")
        assert _mirror(alice) == await _room(server)
        assert alice.resyncs == 1
        assert _resynced(alice, "participant_joined") == ["bob", "carol"]  # carol's event came during the gap
        assert _resynced(alice, "track_published") == sorted((await _room(server))[1])
        assert server.runtime is not None and alice.room is not None
        assert alice.room.seq == await server.runtime.state.rooms.current_seq(ROOM)

        bus.drop = about(bob_sid)
        tracks = (await _room(server))[1]
        await bob.close()
        await until(lambda: bus.dropped == 6, "bob's leave and his two unpublished tracks, lost")
        assert (await _room(server))[0] == {"alice", "carol"}
        bus.drop = lambda e: False
        await carol.close()

        await until(lambda: _mirror(alice) == ({"alice"}, set()), "alice to resync again")
        assert alice.resyncs == 2
        assert _resynced(alice, "participant_left") == ["bob", "carol"]
        assert _resynced(alice, "track_unpublished") == sorted(tracks)
        assert alice.room is not None and not alice.room.held  # carol's leave was in the snapshot: not twice
        assert len([e for e in alice.events if e["event"] == "participant_left"]) == 2
    finally:
        for client in (alice, bob, carol):
            await client.close()


async def test_a_seq_going_back_resyncs(lossy: tuple[RunningServer, LossyBus]) -> None:
    server, _ = lossy
    assert server.runtime is not None
    alice = VitrineClient(server.url, server.token(ROOM, "alice"))
    others = [VitrineClient(server.url, server.token(ROOM, name, create=False)) for name in ("bob", "carol")]
    try:
        await alice.connect()
        for other in others:
            await other.connect()
        await until(lambda: _mirror(alice)[0] == {"alice", "bob", "carol"}, "both joins")
        assert alice.room is not None and alice.resyncs == 0
        # A seq alice has applied, after her snapshot's (the session drops what the snapshot covers), about
        # someone who is not there: as when the numbering restarted under her.
        ghost = ParticipantView(sid="PA_ghost", identity="ghost", role=Role.CUSTOMER)
        stale = RoomEvent(seq=alice.room.seq - 1, event="participant_joined", participant=ghost)
        await server.runtime.state.bus.publish(keys.room_events_channel(ROOM), stale.model_dump_json())
        await until(lambda: alice.resynced == 1, "a resync")
        assert alice.resyncs == 1
        assert _mirror(alice) == ({"alice", "bob", "carol"}, set())
        assert not [e for e in alice.events if (e.get("participant") or {}).get("identity") == "ghost"]
    finally:
        for client in (alice, *others):
            await client.close()


async def test_resync_is_rate_limited_and_needs_a_join(server: RunningServer) -> None:
    early = await DeskClient.connect(server.ws_url)
    alice = VitrineClient(server.url, server.token(ROOM, "alice"))
    try:
        await early.send({"type": "resync"})
        refused = await early.expect("error")
        assert refused["code"] == "not_joined" and refused["ref"] == "resync"
        await alice.connect()
        for _ in range(RESYNC_BURST + 1):
            await alice.send({"type": "resync"})
        error = await alice.next_error()
        assert error["code"] == "rate_limited" and error["ref"] == "resync"
        await until(lambda: alice.resynced == RESYNC_BURST, "the answers within the burst")
        assert alice.errors.empty() and _mirror(alice) == ({"alice"}, set())
    finally:
        await alice.close()
        await early.ws.close()
