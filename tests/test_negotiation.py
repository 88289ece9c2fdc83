"""Offers in both directions, glare, and trickled candidates (WebSocket and WHIP PATCH)."""

from __future__ import annotations

import asyncio

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.client import VitrineClient
from tests.media_helpers import MovingPatternTrack, av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role


def _split_candidates(sdp: str) -> tuple[str, list[str]]:
    """Remove a=candidate lines (and end-of-candidates) from an SDP, returning them separately."""
    kept, candidates = [], []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            candidates.append(line[2:])
        elif line != "a=end-of-candidates":
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


async def test_client_offer_publishes_and_others_receive(server: RunningServer) -> None:
    watcher = VitrineClient(server.url, server.token("client-offers", "watcher", Role.AGENT))
    publisher = VitrineClient(server.url, server.token("client-offers", "browser"))
    try:
        await watcher.connect()
        await publisher.connect()  # publishes nothing at join
        publisher.pc.addTransceiver(MovingPatternTrack(), direction="sendonly")
        await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
        await publisher.send({"type": "offer", "sdp": publisher.pc.localDescription.sdp})
        video = await watcher.next_remote_track("video", timeout=30)
        assert video.info is not None and video.info.participant_sid == publisher.joined["participant"]["sid"]
        assert len(await receive_frames(video, 5)) == 5
        assert publisher.pc.signalingState == "stable"
    finally:
        await publisher.close()
        await watcher.close()


async def test_client_offer_during_a_server_offer_is_glare(server: RunningServer) -> None:
    client = VitrineClient(server.url, server.token("glare", "polite"), tracks=av_tracks())
    client._answer = _never_answer  # type: ignore[method-assign]  # leave the server's offer outstanding
    try:
        await client.connect()
        other = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        other.addTransceiver(MovingPatternTrack(), direction="sendonly")
        await other.setLocalDescription(await other.createOffer())
        await client.send({"type": "offer", "sdp": other.localDescription.sdp})
        error = await client.next_error()
        assert (error["code"], error["ref"]) == ("negotiation_glare", "offer")
        await other.close()
    finally:
        await client.close()


async def _never_answer(message: dict) -> None:
    return None


async def test_trickled_candidates_over_the_websocket(server: RunningServer) -> None:
    publisher = VitrineClient(server.url, server.token("trickle", "seller", Role.AGENT), tracks=av_tracks())
    viewer = VitrineClient(server.url, server.token("trickle", "buyer", Role.VIEWER))
    original_send = viewer.send
    trickled: list[str] = []

    async def send_with_trickle(message: dict) -> None:
        if message.get("type") == "answer" and not trickled:
            sdp, candidates = _split_candidates(message["sdp"])
            await original_send({**message, "sdp": sdp})
            for candidate in candidates:
                trickled.append(candidate)
                await original_send(
                    {"type": "candidate", "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}
                )
            await original_send({"type": "candidate", "candidate": None})
            return
        await original_send(message)

    viewer.send = send_with_trickle  # type: ignore[method-assign]
    try:
        await publisher.connect()
        await viewer.connect()
        video = (await remote_tracks(viewer, 2))["video"]
        assert len(await receive_frames(video, 5)) == 5
        assert trickled, "media flowed with every client candidate trickled, none in the answer"
    finally:
        await viewer.close()
        await publisher.close()


async def test_whip_with_candidates_trickled_by_patch(server: RunningServer) -> None:
    token = server.token("whip-trickle", "obs", Role.HOST)
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        publisher.addTransceiver(track, direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    offer, candidates = _split_candidates(publisher.localDescription.sdp)
    headers = {"Authorization": f"Bearer {token}"}
    viewer = VitrineClient(server.url, server.token("whip-trickle", "fan", Role.VIEWER))
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            created = await http.post(
                "/whip/whip-trickle", content=offer, headers={**headers, "Content-Type": "application/sdp"}
            )
            assert created.status_code == 201, created.text
            await publisher.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            fragment = "".join(f"a={c}\r\n" for c in candidates) + "a=end-of-candidates\r\n"
            patched = await http.patch(
                created.headers["location"],
                content=fragment,
                headers={**headers, "Content-Type": "application/trickle-ice-sdpfrag"},
            )
            assert patched.status_code == 204
            wrong_type = await http.patch(
                created.headers["location"], content=fragment, headers={**headers, "Content-Type": "text/plain"}
            )
            assert wrong_type.status_code == 400
        await viewer.connect()
        video = (await remote_tracks(viewer, 2))["video"]
        assert len(await receive_frames(video, 5)) == 5
        deadline = asyncio.get_running_loop().time() + 20
        while publisher.connectionState != "connected":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    finally:
        await viewer.close()
        await publisher.close()
