"""Knock and admit on /v1/rtc (memory and Redis): a ``needs_admit`` token waits at the door, outside the
room and off the worker, until a room admin admits or denies it; only the first answer counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from loadtest.client import VitrineClient
from tests.desk_helpers import DeskClient
from tests.media_helpers import MovingPatternTrack, receive_frames
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role

BUYER = ROLE_DEFAULT_GRANTS[Role.BUYER].model_copy(update={"needs_admit": True})


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def door_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        yield running


async def _open(server: RunningServer, token: str) -> DeskClient:
    client = await DeskClient.connect(server.ws_url)
    await client.send({"type": "join", "token": token})
    return client


async def _inspector(server: RunningServer, room: str) -> DeskClient:
    inspector = await _open(server, server.token(room, "inspector", Role.INSPECTOR))
    await inspector.expect("joined")
    return inspector


async def _knock(server: RunningServer, room: str, identity: str = "buyer") -> tuple[DeskClient, str]:
    buyer = await _open(server, server.token(room, identity, Role.BUYER, grants=BUYER))
    return buyer, (await buyer.expect("waiting"))["knock"]


async def test_a_knock_waits_outside_until_an_admin_admits_it(door_server: RunningServer) -> None:
    inspector = await _inspector(door_server, "case-1")
    buyer, knock_id = await _knock(door_server, "case-1")
    knock = (await inspector.expect("knock"))["knock"]
    assert (knock["id"], knock["participant"]["identity"], knock["participant"]["role"]) == (knock_id, "buyer", "buyer")
    assert door_server.runtime is not None
    assert [p.identity for p in await door_server.runtime.state.rooms.list_participants("case-1")] == ["inspector"]
    stats = door_server.runtime.media_worker.media_stats()
    assert (stats["participants"], stats["waiting"]) == (1, 1)  # the buyer's connection waits apart on the worker
    await buyer.send({"type": "chat", "text": "hello?"})
    assert (await buyer.expect("error"))["code"] == "not_joined"  # a knocker reaches nothing in the room

    late = await _open(door_server, door_server.token("case-1", "lead", Role.INSPECTOR, create=False))
    assert [k["id"] for k in (await late.expect("joined"))["knocks"]] == [knock_id]  # a console opened later sees it

    mark = inspector.mark()
    await inspector.send({"type": "admit", "knock": knock_id})
    joined = await buyer.expect("joined")
    assert joined["participant"]["identity"] == "buyer" and joined["knocks"] == []
    settled = await late.expect("knock", lambda m: m.get("ended") == "admitted")  # every console clears it
    assert settled["knock"]["id"] == knock_id
    await inspector.expect("event", lambda m: m["event"] == "participant_joined", after=mark)
    await inspector.send({"type": "admit", "knock": knock_id})  # a second answer counts for nothing
    assert (await inspector.expect("error"))["code"] == "knock_not_found"
    for client in (inspector, late, buyer):
        await client.close()


async def test_a_denied_or_departed_knock_never_enters(door_server: RunningServer) -> None:
    inspector = await _inspector(door_server, "case-2")
    viewer = await _open(door_server, door_server.token("case-2", "someone", Role.BUYER, create=False))
    await viewer.expect("joined")
    buyer, knock_id = await _knock(door_server, "case-2")
    await viewer.send({"type": "admit", "knock": knock_id})  # not an admin
    assert (await viewer.expect("error"))["code"] == "permission_denied"
    assert "knock" not in [m["type"] for m in viewer.received]  # knocks go to admins only

    await inspector.send({"type": "admit", "knock": knock_id, "admit": False})
    leave = await buyer.expect("leave")
    assert (leave["code"], leave["reconnect"]) == ("denied", False)
    assert door_server.runtime is not None
    assert "buyer" not in [p.identity for p in await door_server.runtime.state.rooms.list_participants("case-2")]

    other, other_id = await _knock(door_server, "case-2", "other")
    await other.close()  # gave up waiting
    ended = await inspector.expect("knock", lambda m: m["knock"]["id"] == other_id and m.get("ended") == "left")
    assert ended["knock"]["participant"]["identity"] == "other"
    assert await door_server.runtime.rooms.knocks("case-2") == []
    for client in (inspector, viewer, buyer):
        await client.close()


async def test_knocking_needs_an_existing_room(door_server: RunningServer) -> None:
    stranger = await _open(door_server, door_server.token("nobody-here", "buyer", Role.BUYER, grants=BUYER))
    refused = await stranger.expect("error")
    assert (refused["code"], refused["ref"]) == ("room_not_found", "join")
    await stranger.close()


async def test_a_knocker_connects_while_waiting_but_nothing_crosses_the_door(door_server: RunningServer) -> None:
    """The knocker's connection is set up on the worker before the admit (so the admit is fast), yet it receives
    nothing and nothing of it is forwarded until it is let in; then media flows both ways."""
    runtime = door_server.runtime
    assert runtime is not None and runtime.media_worker is not None
    inspector = VitrineClient(
        door_server.url, door_server.token("case-3", "inspector", Role.INSPECTOR), tracks=[MovingPatternTrack()]
    )
    await inspector.connect()
    buyer = VitrineClient(
        door_server.url, door_server.token("case-3", "buyer", Role.BUYER, grants=BUYER), tracks=[MovingPatternTrack()]
    )
    joining = asyncio.create_task(buyer.connect(timeout=60))
    knock = await asyncio.wait_for(inspector.knocks.get(), 30)
    await buyer.wait_connected(timeout=30)  # ICE and DTLS are up while it waits
    stats = runtime.media_worker.media_stats()
    assert (stats["waiting"], stats["participants"], stats["published_tracks"]) == (1, 1, 1)  # the inspector's only
    assert stats["subscriptions"] == 0 and buyer.remote_tracks.empty() and inspector.remote_tracks.empty()
    assert [p.identity for p in await runtime.state.rooms.list_participants("case-3")] == ["inspector"]

    await inspector.send({"type": "admit", "knock": knock["id"]})
    assert (await joining)["participant"]["identity"] == "buyer"
    for client in (inspector, buyer):  # each decodes the other's video
        remote = await client.next_remote_track("video", timeout=30)
        assert len(await receive_frames(remote, 3)) == 3
    stats = runtime.media_worker.media_stats()
    assert (stats["waiting"], stats["participants"], stats["subscriptions"]) == (0, 2, 2)
    assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0
    for client in (inspector, buyer):
        await client.close()
