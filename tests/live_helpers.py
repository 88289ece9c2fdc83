"""Live show test helpers: a shop with a show, its console, and sockets joined to the show's room."""

from __future__ import annotations

from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.desk_helpers import DeskClient, make_shop
from tests.media_helpers import av_tracks
from tests.servers import RunningServer


async def make_show(
    server: RunningServer, shop: str = "acme", title: str = "Spring drop", products: list[str] | None = None
) -> dict[str, Any]:
    """A shop (``make_shop``: products mug-1 and lamp-2) and a scheduled show selling them."""
    await make_shop(server, shop)
    async with server.api() as api:
        response = await api.post(
            f"/v1/shops/{shop}/shows",
            json={"title": title, "products": ["mug-1", "lamp-2"] if products is None else products},
        )
        response.raise_for_status()
        return response.json()


async def console_client(server: RunningServer, show: dict[str, Any]) -> httpx.AsyncClient:
    """An HTTP client logged into the seller's console of ``show``."""
    async with server.api() as api:
        response = await api.post(f"/v1/shops/{show['shop']}/shows/{show['id']}/console")
        response.raise_for_status()
        token = response.json()["token"]
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def go_live(server: RunningServer, show: dict[str, Any]) -> tuple[httpx.AsyncClient, str]:
    """Start the show from the console: the console client and the host's join token."""
    console = await console_client(server, show)
    response = await console.post("/v1/live/console/start")
    response.raise_for_status()
    return console, response.json()["token"]


async def viewer_token(server: RunningServer, show: dict[str, Any], name: str = "Kim") -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.get(f"/v1/live/{show['shop']}/{show['id']}/viewer", params={"name": name})
        response.raise_for_status()
        return response.json()["token"]


async def join(server: RunningServer, token: str) -> DeskClient:
    """A /v1/rtc socket joined with ``token`` (publishing nothing)."""
    client = await DeskClient.connect(server.ws_url)
    await client.send({"type": "join", "token": token})
    await client.expect("joined")
    return client


def entries(client: DeskClient, kind: str) -> list[dict[str, Any]]:
    """The log entries of ``kind`` the client was pushed, in order."""
    return [m["entry"] for m in client.of("log") if m["entry"]["kind"] == kind]


async def obs_publish(http: httpx.AsyncClient, settings: dict[str, Any]) -> tuple[RTCPeerConnection, str]:
    """An aiortc encoder publishes over the show's WHIP with its stream key, as OBS does (the show goes live).
    ``settings`` is the console's ``GET /v1/live/console``; returns the encoder and its WHIP resource URL."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    published = await http.post(
        settings["whip_url"],
        content=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {settings['stream_key']}"},
    )
    assert published.status_code == 201, published.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=published.text, type="answer"))
    return pc, published.headers["location"]
