"""A publisher that dies without DELETE leaves no ghost for WHEP players (issue 16).

The worker frees a silent peer (``peer_silence_s``); these tests check what players see then. A new player of
the room gets ``404 track_not_found``, which it can retry on, never a ``201`` and a connection that shows no
frame. A player already watching learns the publisher left: a WHEP session cannot renegotiate, so the server
ends it and the player's connection closes. A WebSocket viewer, which renegotiates, stays. The publisher is a
real aiortc WHIP client in its own process, killed with SIGKILL: no DELETE, no DTLS close, nothing more.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.client import VitrineClient
from loadtest.whip_client import WhipError, WhipSession
from tests.live_helpers import console_client, make_show, obs_publish
from tests.media_helpers import av_tracks, receive_frames
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role
from vitrine.core.wire.live import show_room

ROOT = Path(__file__).resolve().parent.parent
SILENCE_S = 2.0  # the server's peer_silence_s: a silent peer is freed within 1.25 times this
GONE_WITHIN_S = SILENCE_S * 1.25 + 15  # and the news reaches the player over a loaded machine
PUBLISHER = """
import asyncio, sys
import httpx
import pytest
from loadtest.whip_client import WhipError, WhipSession
from loadtest.source import MovingPatternTrack
from aiortc.mediastreams import AudioStreamTrack
from media.taps import configure_host_candidates

async def main() -> None:
    configure_host_candidates(["127.0.0.1"])
    async with httpx.AsyncClient(base_url=sys.argv[1], timeout=30) as http:
        session = WhipSession(http, "whip", sys.argv[2], sys.argv[3], tracks=[MovingPatternTrack(), AudioStreamTrack()])
        await session.offer()
        await session.post()
        await session.wait_connected(30)
        print(session.sid, flush=True)
        await asyncio.Event().wait()  # publishing until killed

asyncio.run(main())
"""


@asynccontextmanager
async def _publisher_process(server: RunningServer, room: str) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    """A WHIP publisher in a process of its own, connected; yields it and its sid."""
    token = server.token(room, "encoder", Role.HOST)
    process = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, server.url, room, token],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        assert line.strip(), f"the publisher exited ({process.poll()}) before it connected"
        yield process, line.strip()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


async def _wait(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``predicate`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.05)


async def _player(http: httpx.AsyncClient, room: str, token: str) -> WhipSession:
    player = WhipSession(http, "whep", room, token)
    await player.offer()
    await player.post()
    await player.wait_connected(30)
    return player


async def _participants(server: RunningServer, room: str) -> set[str]:
    async with server.api() as api:
        return {p["identity"] for p in (await api.get(f"/v1/rooms/{room}")).json()["participants"]}


async def test_a_killed_publisher_ends_its_players_and_new_ones_get_a_retryable_404() -> None:
    room = "ghost-room"
    async with (
        embedded_server(peer_silence_s=SILENCE_S) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        worker = server.runtime.media_worker
        viewer = VitrineClient(server.url, server.token(room, "socket-viewer", Role.VIEWER, create=False))
        players: list[WhipSession] = []
        try:
            async with _publisher_process(server, room) as (process, publisher_sid):
                await _wait(lambda: len(worker.rooms[room].ups) == 2, "the publisher's two tracks", 30)
                for name in ("player-1", "player-2"):
                    players.append(await _player(http, room, server.token(room, name, Role.VIEWER, create=False)))
                await viewer.connect()
                video = await viewer.next_remote_track("video")
                for player in players:
                    frames = await receive_frames(_remote(player, "video"), 3)
                    assert frames[-1].width > 0
                await receive_frames(video, 3)
                assert {"encoder", "player-1", "player-2", "socket-viewer"} == await _participants(server, room)

                os.killpg(process.pid, signal.SIGKILL)  # no DELETE, no DTLS close: gone
                process.wait(10)
                for player in players:
                    await _wait(
                        lambda p=player: p.pc.connectionState == "closed",
                        "the player's connection to end",
                        GONE_WITHIN_S,
                    )

            assert publisher_sid not in worker.rooms[room].peers
            assert await _participants(server, room) == {"socket-viewer"}, "the players and the publisher left"
            assert viewer.pc.connectionState == "connected", "a renegotiating viewer keeps its session"
            assert not worker.rooms[room].ups

            late = WhipSession(http, "whep", room, server.token(room, "late", Role.VIEWER, create=False))
            await late.offer()
            with pytest.raises(WhipError) as refused:
                await late.post()
            assert refused.value.code == "track_not_found"  # retryable, where a ghost gave 201 and no frame
            await late.pc.close()

            async with _publisher_process(server, room) as (_, back_sid):  # the encoder comes back
                await _wait(lambda: len(worker.rooms[room].ups) == 2, "the new publisher's tracks", 30)
                again = await _player(http, room, server.token(room, "player-1", Role.VIEWER, create=False))
                players.append(again)
                assert (await receive_frames(_remote(again, "video"), 3))[-1].width > 0
                assert back_sid in worker.rooms[room].peers
        finally:
            await viewer.close()
            for player in players:
                await player.pc.close()


async def test_a_show_player_learns_when_obs_stops_and_plays_again_when_it_is_back() -> None:
    """OBS stopping, or reconnecting (which republishes under new tracks, and a WHEP session cannot take them
    up: it cannot renegotiate, and no down track is ever rebound), ends the players of its old tracks; they
    play again with a new POST. The show itself stays live, and each player's slot comes back."""
    async with embedded_server(whep_new_every_s=0, whep_max_per_client=1) as server:
        await _show_player_round_trip(server)


async def _show_player_round_trip(server: RunningServer) -> None:
    show = await make_show(server)
    console = await console_client(server, show)
    settings = (await console.get("/v1/live/console")).json()
    await console.aclose()
    worker = server.runtime.media_worker
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        encoder = await obs_publish(http, settings)
        player = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            whep = f"/v1/live/acme/{show['id']}/whep"
            played = await _play(http, whep, player)
            assert played.status_code == 201, played.text
            room = worker.rooms[show_room(show["id"])]
            await _wait(lambda: player.connectionState == "connected", "the player to connect", 30)

            stopped = await http.delete(
                encoder[1], headers={"Authorization": f"Bearer {settings['stream_key']}"}
            )  # OBS stops streaming
            assert stopped.status_code == 200
            await _wait(lambda: player.connectionState == "closed", "the show player's connection to end", 30)
            await _wait(lambda: not room.peers, "the room to be empty on the worker", 30)

            retry = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            refused = await _play(http, whep, retry)
            await retry.close()
            assert refused.status_code == 404 and refused.json()["code"] == "track_not_found"

            await encoder[0].close()
            encoder = await obs_publish(http, settings)  # OBS is back
            again = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            frames: asyncio.Queue = asyncio.Queue()
            again.on("track", frames.put_nowait)
            replayed = await _play(http, whep, again)
            assert replayed.status_code == 201, replayed.text
            track = await asyncio.wait_for(frames.get(), 30)
            assert (await asyncio.wait_for(track.recv(), 30)).width > 0

            # OBS reconnects without a DELETE (its output restarted): the new session replaces the old one at
            # once, and the player of the old tracks is ended too, so it plays the new ones with a new POST.
            previous, encoder = encoder, await obs_publish(http, settings)
            await _wait(lambda: again.connectionState == "closed", "the player of the old session to end", 30)
            room = worker.rooms[show_room(show["id"])]
            await _wait(lambda: len(room.peers) == 1, "only the new encoder on the worker", 30)
            assert await _participants(server, show_room(show["id"])) == {"obs"}  # the player's slot is free
            await previous[0].close()
            third = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            frames = asyncio.Queue()
            third.on("track", frames.put_nowait)
            try:
                assert (await _play(http, whep, third)).status_code == 201
                track = await asyncio.wait_for(frames.get(), 30)
                assert (await asyncio.wait_for(track.recv(), 30)).width > 0
            finally:
                await third.close()
                await again.close()
        finally:
            await player.close()
            await encoder[0].close()


async def _play(http: httpx.AsyncClient, url: str, pc: RTCPeerConnection) -> httpx.Response:
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"})
    if response.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return response


def _remote(player: WhipSession, kind: str) -> Any:
    """The player's receiver of ``kind`` (``receive_frames`` reads its ``.track``)."""
    receiver = player.received(kind)
    assert receiver is not None, f"no {kind} bound to the player"
    return receiver


async def test_an_offer_that_can_bind_nothing_is_a_404_not_a_silent_session(server: RunningServer) -> None:
    """Something is published, but nothing this offer can play (an audio-only player, a video-only room):
    the worker binds no m-line, and the session is refused rather than left connected and silent."""
    room = "bind-nothing"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        publisher = WhipSession(http, "whip", room, server.token(room, "cam", Role.HOST), tracks=av_tracks()[:1])
        player = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            await publisher.offer()
            await publisher.post()
            worker_room = server.runtime.media_worker.rooms[room]
            player.addTransceiver("audio", direction="recvonly")
            await player.setLocalDescription(await player.createOffer())
            token = server.token(room, "ears", Role.VIEWER, create=False)
            refused = await http.post(
                f"/whep/{room}",
                content=player.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
            assert refused.status_code == 404 and refused.json()["code"] == "track_not_found", refused.text
            assert list(worker_room.peers) == [publisher.sid]
            assert await _participants(server, room) == {"cam"}
        finally:
            await player.close()
            await publisher.close()
