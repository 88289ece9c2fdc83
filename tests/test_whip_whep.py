"""WHIP publishing (RFC 9725) and WHEP playback with plain aiortc peers over HTTP."""

from __future__ import annotations

import asyncio

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.media_helpers import av_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role


async def _whip_publish(server: RunningServer, room: str, token: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/whip/{room}",
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"]


async def _whep_play(
    server: RunningServer, room: str, token: str, params: dict[str, str] | None = None
) -> tuple[RTCPeerConnection, str, asyncio.Queue]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: asyncio.Queue = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/whep/{room}",
            content=pc.localDescription.sdp,
            params=params,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"], tracks


async def test_whip_publish_whep_play(server: RunningServer) -> None:
    publisher, publisher_resource = await _whip_publish(server, "live-1", server.token("live-1", "obs", Role.HOST))
    viewer_token = server.token("live-1", "viewer-1", Role.VIEWER, create=False)
    async with server.api() as api:
        deadline = asyncio.get_running_loop().time() + 20
        while len((await api.get("/v1/rooms/live-1")).json()["tracks"]) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    player, player_resource, tracks = await _whep_play(server, "live-1", viewer_token)
    try:
        received = {}
        for _ in range(2):
            track = await asyncio.wait_for(tracks.get(), 20)
            received[track.kind] = track
        assert set(received) == {"audio", "video"}
        assert await asyncio.wait_for(received["audio"].recv(), 30) is not None
        video_frames = await asyncio.wait_for(_frames(received["video"], 5), 30)
        assert len(video_frames) == 5
        stats = server.runtime.media_worker.media_stats()
        assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0
    finally:
        async with httpx.AsyncClient(base_url=server.url) as http:
            gone = await http.delete(player_resource, headers={"Authorization": f"Bearer {viewer_token}"})
            assert gone.status_code == 200
        await player.close()
        await publisher.close()
    assert publisher_resource.startswith("/whip/live-1/")


async def _frames(track, count: int) -> list:
    return [await track.recv() for _ in range(count)]


async def test_whip_delete_ends_the_publication(server: RunningServer) -> None:
    token = server.token("live-2", "obs", Role.HOST)
    publisher, resource = await _whip_publish(server, "live-2", token)
    try:
        async with server.api() as api:
            assert len((await api.get("/v1/rooms/live-2")).json()["participants"]) == 1
            async with httpx.AsyncClient(base_url=server.url) as http:
                wrong = server.token("live-2", "someone-else", Role.HOST)
                refused = await http.delete(resource, headers={"Authorization": f"Bearer {wrong}"})
                assert refused.status_code == 404
                deleted = await http.delete(resource, headers={"Authorization": f"Bearer {token}"})
                assert deleted.status_code == 200
            detail = (await api.get("/v1/rooms/live-2")).json()
            assert detail["participants"] == [] and detail["tracks"] == []
    finally:
        await publisher.close()


async def test_whep_before_anything_is_published_is_refused(server: RunningServer) -> None:
    async with server.api() as api:
        assert (await api.post("/v1/rooms", json={"name": "live-3", "kind": "live"})).status_code == 201
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/whep/live-3",
            content=pc.localDescription.sdp,
            headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {server.token('live-3', 'v', Role.VIEWER, create=False)}",
            },
        )
    await pc.close()
    assert response.status_code == 404
    assert response.json()["code"] == "track_not_found"


async def _wait_tracks(server: RunningServer, room: str, count: int) -> dict:
    async with server.api() as api:
        deadline = asyncio.get_running_loop().time() + 20
        while len((detail := (await api.get(f"/v1/rooms/{room}")).json())["tracks"]) < count:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    return detail


async def test_whep_participant_plays_only_that_publishers_tracks(server: RunningServer) -> None:
    """A consult over WHIP/WHEP: two publishers; each one's WHEP session must get the other's media."""
    alice, alice_resource = await _whip_publish(server, "consult-9", server.token("consult-9", "alice"))
    bob, bob_resource = await _whip_publish(server, "consult-9", server.token("consult-9", "bob"))
    player = None
    try:
        detail = await _wait_tracks(server, "consult-9", 4)
        sid_of = {p["identity"]: p["sid"] for p in detail["participants"]}
        bob_tracks = {t["kind"]: t["sid"] for t in detail["tracks"] if t["participant_sid"] == sid_of["bob"]}
        assert set(bob_tracks) == {"audio", "video"}
        # Without ?participant= the first published video (alice's) would be bound: ask for bob's, the second.
        token = server.token("consult-9", "alice.play", create=False)
        player, player_resource, tracks = await _whep_play(server, "consult-9", token, {"participant": "bob"})
        received = {}
        for _ in range(2):
            track = await asyncio.wait_for(tracks.get(), 20)
            received[track.kind] = track
        assert {kind: track.id for kind, track in received.items()} == bob_tracks  # msid: the bound track's sid
        room = server.runtime.media_worker.rooms["consult-9"]
        whep_peer = room.peers[player_resource.rsplit("/", 1)[1]]
        assert {d.up.track.participant_sid for d in whep_peer.subscriptions.values()} == {sid_of["bob"]}
        assert len(await asyncio.wait_for(_frames(received["video"], 3), 30)) == 3
    finally:
        for pc in (player, alice, bob):
            if pc is not None:
                await pc.close()
    assert alice_resource != bob_resource


async def test_whep_participant_that_publishes_nothing_is_a_typed_error(server: RunningServer) -> None:
    publisher, _ = await _whip_publish(server, "live-4", server.token("live-4", "obs", Role.HOST))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await _wait_tracks(server, "live-4", 2)
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        token = server.token("live-4", "v", Role.VIEWER, create=False)
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            unknown = await http.post(
                "/whep/live-4", params={"participant": "nobody"}, content=pc.localDescription.sdp, headers=headers
            )
            malformed = await http.post(
                "/whep/live-4", params={"participant": "no body!"}, content=pc.localDescription.sdp, headers=headers
            )
        assert unknown.status_code == 404 and unknown.json()["code"] == "track_not_found"
        assert "nobody" in unknown.json()["message"]
        assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_message"
        async with server.api() as api:
            assert len((await api.get("/v1/rooms/live-4")).json()["participants"]) == 1  # nobody was admitted
    finally:
        await pc.close()
        await publisher.close()
