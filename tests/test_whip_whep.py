"""WHIP publishing (RFC 9725) and WHEP playback with plain aiortc peers over HTTP."""

from __future__ import annotations

import asyncio

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.media_helpers import av_tracks
from tests.servers import RunningServer
from vitrine.models import Role


async def _whip_publish(server: RunningServer, room: str, token: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(f"/whip/{room}", content=pc.localDescription.sdp,
                                   headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"]


async def _whep_play(server: RunningServer, room: str, token: str) -> tuple[RTCPeerConnection, str, asyncio.Queue]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: asyncio.Queue = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(f"/whep/{room}", content=pc.localDescription.sdp,
                                   headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
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
        response = await http.post("/whep/live-3", content=pc.localDescription.sdp, headers={
            "Content-Type": "application/sdp",
            "Authorization": f"Bearer {server.token('live-3', 'v', Role.VIEWER, create=False)}"})
    await pc.close()
    assert response.status_code == 404
    assert response.json()["code"] == "track_not_found"
