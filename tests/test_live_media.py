"""A show from an OBS-like encoder: an aiortc WHIP publisher with the show's stream key, watched
over WHEP by any player and over /v1/rtc by viewers; forged and rotated keys are refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.live_helpers import console_client, join, make_show, viewer_token
from tests.media_helpers import av_tracks
from tests.servers import RunningServer, embedded_server

SDP = {"Content-Type": "application/sdp"}


async def _offer(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def _publisher() -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    return pc


async def test_obs_goes_live_with_its_stream_key_and_every_kind_of_viewer_watches(server: RunningServer) -> None:
    show = await make_show(server)
    console = await console_client(server, show)
    settings = (await console.get("/v1/live/console")).json()
    encoder = await _publisher()
    async with httpx.AsyncClient(base_url=server.url) as http:
        published = await http.post(
            settings["whip_url"],
            content=await _offer(encoder),
            headers={**SDP, "Authorization": f"Bearer {settings['stream_key']}"},
        )
        assert published.status_code == 201, published.text
        assert published.headers["location"].startswith(f"/v1/live/acme/{show['id']}/whip/")
        await encoder.setRemoteDescription(RTCSessionDescription(sdp=published.text, type="answer"))
        assert (await console.get("/v1/live/console")).json()["show"]["state"] == "live"  # OBS started it

        viewer = await join(server, await viewer_token(server, show))  # the viewer page's path
        await viewer.expect("offer")
        assert {t["kind"] for t in viewer.of("joined")[0]["tracks"]} <= {"audio", "video"}

        player = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # any WHEP player, no credentials
        tracks: asyncio.Queue = asyncio.Queue()
        player.on("track", tracks.put_nowait)
        player.addTransceiver("video", direction="recvonly")
        player.addTransceiver("audio", direction="recvonly")
        played = await http.post(f"/v1/live/acme/{show['id']}/whep", content=await _offer(player), headers=SDP)
        assert played.status_code == 201, played.text
        await player.setRemoteDescription(RTCSessionDescription(sdp=played.text, type="answer"))
        video = None
        while video is None:
            track = await asyncio.wait_for(tracks.get(), 30)
            video = track if track.kind == "video" else None
        assert await asyncio.wait_for(video.recv(), 30) is not None  # a decoded frame from the encoder

        stats = server.runtime.media_worker.media_stats()
        assert (stats["decoders_running"], stats["encoders_created"]) == (0, 0)
        assert (await http.delete(played.headers["location"])).status_code == 200  # before OBS: then it is ended
        assert (
            await http.delete(
                published.headers["location"], headers={"Authorization": f"Bearer {settings['stream_key']}"}
            )
        ).status_code == 200
    for pc in (encoder, player):
        await pc.close()
    await viewer.close()
    await console.aclose()


async def test_a_forged_or_rotated_stream_key_is_refused(server: RunningServer) -> None:
    show = await make_show(server)
    console = await console_client(server, show)
    old_key = (await console.get("/v1/live/console")).json()["stream_key"]
    new_key = (await console.post("/v1/live/console/stream-key")).json()["stream_key"]
    encoder = await _publisher()
    offer = await _offer(encoder)
    async with httpx.AsyncClient(base_url=server.url) as http:
        url = f"/v1/live/acme/{show['id']}/whip"
        for key in (old_key, "sk_" + "A" * 32, server.token(f"live-{show['id']}", "obs", create=False)):
            refused = await http.post(url, content=offer, headers={**SDP, "Authorization": f"Bearer {key}"})
            assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
        assert (await http.post(url, content=offer, headers=SDP)).status_code == 401
        other = await make_other_show(server)  # one show's key does not open another show
        crossed = await http.post(
            f"/v1/live/acme/{other}/whip", content=offer, headers={**SDP, "Authorization": f"Bearer {new_key}"}
        )
        assert crossed.status_code == 401
        silent = await http.post(
            url,
            content=offer.replace("a=sendonly", "a=recvonly"),
            headers={**SDP, "Authorization": f"Bearer {new_key}"},
        )
        assert (silent.status_code, silent.json()["code"]) == (422, "negotiation_failed")  # and nothing goes live
        early = await http.post(f"/v1/live/acme/{show['id']}/whep", content=offer, headers=SDP)
        assert (early.status_code, early.json()["code"]) == (409, "show_not_live")
    assert (await console.get("/v1/live/console")).json()["show"]["state"] == "scheduled"  # nothing went live
    await encoder.close()
    await console.aclose()


async def make_other_show(server: RunningServer) -> str:
    async with server.api() as api:
        response = await api.post("/v1/shops/acme/shows", json={"title": "Another"})
        response.raise_for_status()
        return response.json()["id"]


@contextlib.asynccontextmanager
async def live_with_players(
    server: RunningServer, count: int
) -> AsyncIterator[tuple[str, list[RTCPeerConnection], httpx.AsyncClient]]:
    """A show live from an OBS-like encoder, ``count`` WHEP players not yet posted, and an HTTP client: yields
    the show's anonymous WHEP URL, the players and the client."""
    show = await make_show(server)
    console = await console_client(server, show)
    settings = (await console.get("/v1/live/console")).json()
    encoder, players = await _publisher(), []
    for _ in range(count):
        players.append(RTCPeerConnection(RTCConfiguration(iceServers=[])))
        players[-1].addTransceiver("video", direction="recvonly")
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            published = await http.post(
                settings["whip_url"],
                content=await _offer(encoder),
                headers={**SDP, "Authorization": f"Bearer {settings['stream_key']}"},
            )
            assert published.status_code == 201, published.text
            yield f"/v1/live/acme/{show['id']}/whep", players, http
    finally:
        for pc in (encoder, *players):
            await pc.close()
        await console.aclose()


async def test_one_address_holds_a_few_anonymous_players_counted_once() -> None:
    """300 anonymous WHEP sessions from one script held 300 players and inflated the show's numbers: one address
    now holds at most ``whep_max_per_client`` players, and a player that stops gives its place back."""
    async with (
        embedded_server(whep_max_per_client=2, whep_new_every_s=0) as server,
        live_with_players(server, 4) as (url, players, http),
    ):
        statuses = [(await http.post(url, content=await _offer(player), headers=SDP)) for player in players[:3]]
        assert [r.status_code for r in statuses] == [201, 201, 429]
        assert statuses[2].json()["code"] == "rate_limited"
        room = "live-" + url.split("/")[4]
        whep = [p for p in await server.runtime.state.rooms.list_participants(room) if p.identity.startswith("whep-")]
        assert len(whep) == 2 and len({p.identity for p in whep}) == 2

        assert (await http.delete(statuses[0].headers["location"])).status_code == 200  # a place comes back
        again = await http.post(url, content=await _offer(players[3]), headers=SDP)
        assert again.status_code == 201, again.text
        stats = await server.runtime.state.records.shows.stats(room)
        assert stats["viewer_sessions"] == 3  # the refused one is not a session


async def test_one_address_starts_one_anonymous_player_per_interval() -> None:
    async with embedded_server(whep_new_every_s=60) as server, live_with_players(server, 2) as (url, players, http):
        first = await http.post(url, content=await _offer(players[0]), headers=SDP)
        second = await http.post(url, content=await _offer(players[1]), headers=SDP)
        assert first.status_code == 201, first.text
        assert (second.status_code, second.json()["code"]) == (429, "rate_limited")
        assert "one new player per 60 s" in second.json()["message"]


async def test_with_the_cap_off_every_anonymous_player_gets_an_identity_of_its_own() -> None:
    """Behind a reverse proxy the operator turns the cap off: one address then starts as many players as it likes,
    each under its own identity, and no slot is looked up."""
    async with (
        embedded_server(whep_max_per_client=0, whep_new_every_s=0) as server,
        live_with_players(server, 3) as (url, players, http),
    ):
        posted = [await http.post(url, content=await _offer(player), headers=SDP) for player in players]
        assert [r.status_code for r in posted] == [201, 201, 201]
        room = "live-" + url.split("/")[4]
        whep = {
            p.identity
            for p in await server.runtime.state.rooms.list_participants(room)
            if p.identity.startswith("whep-")
        }
        assert len(whep) == 3
