"""A participant whose peer connection ends leaves the room, whatever its socket does (issue 14).

A client that closes its peer connection but keeps its WebSocket used to leave a closed connection in the
room: every later publish failed with ``internal`` and later viewers got nothing. A WHEP player that
vanished (closed, or killed without a word) was never cleaned up. The worker now notices (connection
state, silence) and signaling announces the leave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from loadtest.client import VitrineClient
from media import taps
from tests.servers import RunningServer, embedded_server
from tests.worker_harness import wait_for
from vitrine.core.models import Role

SILENCE_S = 2.0  # the test's peer_silence_s: the silent peer is freed within 1.25 times this


def _left(client: VitrineClient, sid: str) -> bool:
    return any(e.get("event") == "participant_left" and e["participant"]["sid"] == sid for e in client.events)


async def test_a_closed_peer_connection_leaves_and_the_room_keeps_working(server: RunningServer) -> None:
    room, worker = "gone-ws", server.runtime.media_worker
    host = VitrineClient(server.url, server.token(room, "host"), tracks=[AudioStreamTrack()])
    breaker = VitrineClient(server.url, server.token(room, "breaker"))
    clients = [host, breaker]
    try:
        await host.connect()
        breaker_sid = (await breaker.connect())["participant"]["sid"]
        await breaker.next_remote_track("audio")
        await breaker.wait_connected()
        await breaker.pc.close()  # its socket stays open, pinging
        await wait_for(lambda: _left(host, breaker_sid), "the breaker's leave, announced to the room")
        await breaker.wait_closed(timeout=20)
        assert breaker.leave_notice is not None and breaker.leave_notice["reconnect"] is True
        assert breaker_sid not in worker.rooms[room].peers

        late = VitrineClient(server.url, server.token(room, "late"), tracks=[AudioStreamTrack()])
        viewer = VitrineClient(server.url, server.token(room, "viewer"))
        clients += [late, viewer]
        late_sid = (await late.connect())["participant"]["sid"]
        await late.wait_connected()
        await viewer.connect()
        heard = {(await viewer.next_remote_track("audio")).info.participant_sid for _ in range(2)}
        assert late_sid in heard, "a publish after the breaker left reaches a later viewer"
        assert host.errors.empty() and late.errors.empty() and viewer.errors.empty()
        assert len(worker.rooms[room].peers) == 3 and len(worker.rooms[room].ups) == 2
    finally:
        for client in clients:
            await client.close()


async def _whep(
    server: RunningServer, room: str, token: str, hook: taps.DatagramHook | None = None
) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    if hook is not None:
        taps.hook_datagrams(pc, hook)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/whep/{room}",
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"].rsplit("/", 1)[1]


class Vanish:
    """A link that stops carrying anything once ``gone``: a player killed with ``kill -9``, or unplugged."""

    def __init__(self) -> None:
        self.gone = False

    def inbound(self, data: bytes, deliver: Callable[[], None]) -> None:
        if not self.gone:
            deliver()

    def outbound(self, data: bytes, send: Callable[[], None]) -> None:
        if not self.gone:
            send()


async def _participants(server: RunningServer, room: str) -> set[str]:
    async with server.api() as api:
        return {p["sid"] for p in (await api.get(f"/v1/rooms/{room}")).json()["participants"]}


async def _wait_gone(server: RunningServer, room: str, sid: str, timeout: float) -> None:
    """Until ``sid`` is out of the room's records and off the worker."""
    worker, started = server.runtime.media_worker, time.monotonic()
    while sid in await _participants(server, room) or sid in worker.rooms[room].peers:
        assert time.monotonic() - started < timeout, f"{sid} still in {room} after {timeout} s"
        await asyncio.sleep(0.05)


async def test_whep_players_that_vanish_are_removed() -> None:
    room = "gone-whep"
    async with embedded_server(peer_silence_s=SILENCE_S) as server:
        worker = server.runtime.media_worker
        host = VitrineClient(server.url, server.token(room, "host", Role.HOST), tracks=[AudioStreamTrack()])
        await host.connect()
        await wait_for(lambda: room in worker.rooms and len(worker.rooms[room].ups) == 1, "the host's audio")
        try:
            closed, closed_sid = await _whep(server, room, server.token(room, "closes", Role.VIEWER, create=False))
            link = Vanish()
            killed, killed_sid = await _whep(
                server, room, server.token(room, "killed", Role.VIEWER, create=False), hook=link
            )
            for sid in (closed_sid, killed_sid):
                await wait_for(
                    lambda sid=sid: worker.rooms[room].peers[sid].pc.connectionState == "connected",
                    "the player connected",
                )
            assert {closed_sid, killed_sid} <= await _participants(server, room)

            await closed.close()  # and never DELETEs
            await _wait_gone(server, room, closed_sid, timeout=20)
            assert killed_sid in await _participants(server, room)

            link.gone = True  # from now on nothing leaves or reaches it: no DTLS close, no consent answer
            # Freed for its silence: aioice's consent expiry would take at least 24 s (6 checks 4-6 s apart).
            await _wait_gone(server, room, killed_sid, timeout=SILENCE_S * 1.25 + 10)
            await killed.close()
            assert await _participants(server, room) == {host.joined["participant"]["sid"]}
            assert list(worker.rooms[room].peers) == [host.joined["participant"]["sid"]]
        finally:
            await host.close()
