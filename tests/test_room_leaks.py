"""Rooms are released (issue 14): a join whose offer aiortc cannot answer frees its worker room even though
the half-built connection's ``close()`` raises, and a room a join token created is removed once it has
been empty for the grace, never while someone is in it, never one that the REST API or a record owns."""

from __future__ import annotations

import asyncio
import time

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from loadtest.client import VitrineClient
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role, Room, RoomKind

ROOM_LIMIT = 3
GRACE_S = 1.0
TIMEOUT_S = 30.0


async def _unanswerable_offer() -> str:
    """A publishing offer the SDP guard lets through, but whose BUNDLE group starts with a mid that no m-line
    has: aiortc applies it half-way (the m-line's transport is dropped for a primary that does not exist),
    ``createAnswer`` fails, and the connection's own ``close()`` then raises."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    assert "a=group:BUNDLE 0\r\n" in sdp
    return sdp.replace("a=group:BUNDLE 0\r\n", "a=group:BUNDLE x 0\r\n")


async def test_offers_that_cannot_be_answered_release_their_rooms() -> None:
    async with embedded_server(max_rooms_per_worker=ROOM_LIMIT) as server:
        worker = server.runtime.media_worker
        offer = await _unanswerable_offer()
        async with httpx.AsyncClient(base_url=server.url) as http:
            for n in range(ROOM_LIMIT * 2):
                response = await http.post(
                    f"/whip/bad-{n}",
                    content=offer,
                    headers={
                        "Content-Type": "application/sdp",
                        "Authorization": f"Bearer {server.token(f'bad-{n}', f'obs-{n}', Role.HOST)}",
                    },
                )
                assert response.status_code == 422, response.text
                assert response.json()["code"] == "negotiation_failed"
                assert worker.rooms == {}
        client = VitrineClient(server.url, server.token("good", "guest"), tracks=[AudioStreamTrack()])
        try:
            await client.connect()
            await client.wait_connected()
            assert list(worker.rooms) == ["good"] and len(worker.rooms["good"].peers) == 1
        finally:
            await client.close()


async def _room_exists(server: RunningServer, name: str) -> bool:
    async with server.api() as api:
        return (await api.get(f"/v1/rooms/{name}")).status_code == 200


async def _wait_removed(server: RunningServer, name: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while await _room_exists(server, name):
        assert time.monotonic() < deadline, f"room {name} was not removed"
        await asyncio.sleep(0.05)


async def _visit(server: RunningServer, room: str, identity: str) -> None:
    """Join (creating the room, if the token's grant allows) and leave again."""
    client = VitrineClient(server.url, server.token(room, identity))
    try:
        await client.connect()
    finally:
        await client.close()
    await _wait_left(server, room)


async def _wait_left(server: RunningServer, room: str, staying: int = 0) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        async with server.api() as api:
            response = await api.get(f"/v1/rooms/{room}")
        if response.status_code != 200 or len(response.json()["participants"]) == staying:
            return
        assert time.monotonic() < deadline, f"the visitor of {room} did not leave"
        await asyncio.sleep(0.05)


async def test_empty_token_rooms_are_removed_after_the_grace() -> None:
    async with embedded_server(empty_room_grace_s=GRACE_S) as server:
        async with server.api() as api:
            assert (await api.post("/v1/rooms", json={"name": "by-api", "kind": "consult"})).status_code == 201
        claimed = Room(name="claimed", kind=RoomKind.CONSULT)
        server.runtime.rooms.restore_from(lambda name: _claim(name, claimed))

        await _visit(server, "by-api", "a")  # the REST API's room: it stays
        await _visit(server, "rejoined", "b")
        back = VitrineClient(server.url, server.token("rejoined", "b-again"))  # back within the grace
        await back.connect()
        try:
            await _visit(server, "claimed", "c")  # a record owns it: it stays
            await _visit(server, "left", "d")  # emptied last: once it is gone, every earlier grace is over
            await _wait_removed(server, "left")
            assert await _room_exists(server, "by-api")
            assert await _room_exists(server, "rejoined")
            assert await _room_exists(server, "claimed")
        finally:
            await back.close()
        await _wait_removed(server, "rejoined")  # empty again: now it goes
        assert await _room_exists(server, "by-api") and await _room_exists(server, "claimed")


async def _claim(name: str, room: Room) -> Room | None:
    return room if name == room.name else None
