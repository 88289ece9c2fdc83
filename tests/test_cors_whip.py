"""WHIP and WHEP as RFC 9725 browser clients use them across origins (issue 16).

A browser client on another origin needs its preflights answered (``OPTIONS``, with ``If-Match`` and, for
Eyevinn's whip-web-client, ``ETag`` allowed), must be able to read ``Location``, ``Link`` and ``ETag``, and
sends ``OPTIONS`` itself for the endpoint's ICE servers. A show's public WHEP honors the shop's own origins.
Trickle ``PATCH``es carry the session's ``ETag`` in ``If-Match``: another one is ``412``, ``*`` (an ICE
restart, which aiortc cannot do) is ``422``. Real servers on loopback sockets and real aiortc peers.
"""

from __future__ import annotations

from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.desk_helpers import make_shop
from tests.live_helpers import console_client
from tests.media_helpers import av_tracks
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role

APP = "http://app.example:8080"  # VITRINE_ALLOWED_ORIGINS
SHOP_SITE = "https://shop.example:8443"  # only in the shop's allowed_origins
STRANGER = "http://stranger.example"
SDP = {"Content-Type": "application/sdp"}
TURN = {"turn_urls": ["turn:127.0.0.1:3478"], "turn_secret": "t" * 32, "allowed_origins": [APP]}


def _preflight(origin: str, method: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


def _listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


async def _publish(http: httpx.AsyncClient, url: str, token: str, **headers: str) -> tuple[RTCPeerConnection, Any]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(
        url, content=pc.localDescription.sdp, headers={**SDP, "Authorization": f"Bearer {token}", **headers}
    )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response


async def test_preflights_of_the_listed_origin_allow_what_rfc_9725_clients_send() -> None:
    async with embedded_server(**TURN) as server, httpx.AsyncClient(base_url=server.url) as http:
        for path in ("/whip/r1", "/whep/r1", "/whip/r1/PA_x", "/whep/r1/PA_x"):
            for method, headers in (
                ("POST", "authorization, content-type"),
                ("OPTIONS", "authorization"),  # Eyevinn's whip-web-client asks the endpoint for ICE servers
                ("PATCH", "authorization, content-type, if-match"),  # Medooze's trickle
                ("PATCH", "authorization, content-type, etag"),  # Eyevinn's trickle
                ("DELETE", "authorization"),
            ):
                answer = await http.options(path, headers=_preflight(APP, method, headers))
                assert answer.status_code == 200, (path, method, answer.text)
                assert answer.headers["access-control-allow-origin"] == APP
                assert method.lower() in _listed(answer.headers["access-control-allow-methods"])
                assert _listed(headers) <= _listed(answer.headers["access-control-allow-headers"])

            refused = await http.options(path, headers=_preflight(STRANGER, "POST"))
            assert refused.status_code == 400
            assert "access-control-allow-origin" not in refused.headers


async def test_plain_options_answer_what_the_endpoint_takes_and_its_ice_servers_for_a_token() -> None:
    async with embedded_server(**TURN) as server, httpx.AsyncClient(base_url=server.url) as http:
        token = server.token("r2", "studio", Role.HOST)
        for kind in ("whip", "whep"):
            bare = await http.options(f"/{kind}/r2")  # same origin: no preflight; the static mount said 405
            assert bare.status_code == 200, bare.text
            assert bare.headers["accept-post"] == "application/sdp"
            assert _listed(bare.headers["allow"]) == {"options", "post"}
            assert "link" not in bare.headers  # no token, no TURN credentials

            told = await http.options(f"/{kind}/r2", headers={"Authorization": f"Bearer {token}"})
            assert told.status_code == 200
            assert 'rel="ice-server"' in told.headers["link"] and "turn:127.0.0.1:3478" in told.headers["link"]
            assert 'credential-type="password"' in told.headers["link"]

            other_room = await http.options(f"/{kind}/r3", headers={"Authorization": f"Bearer {token}"})
            assert "link" not in other_room.headers
            forged = await http.options(f"/{kind}/r2", headers={"Authorization": "Bearer not-a-token"})
            assert forged.status_code == 200 and "link" not in forged.headers

            resource = await http.options(f"/{kind}/r2/PA_any")
            assert resource.status_code == 200
            assert resource.headers["accept-patch"] == "application/trickle-ice-sdpfrag"
            assert _listed(resource.headers["allow"]) == {"options", "patch", "delete"}

        cross = await http.options("/whip/r2", headers={"Origin": APP, "Authorization": f"Bearer {token}"})
        assert cross.headers["access-control-allow-origin"] == APP  # Eyevinn reads the methods it may PATCH with
        assert "access-control-allow-methods" in _listed(cross.headers["access-control-expose-headers"])
        assert "patch" in _listed(cross.headers["access-control-allow-methods"])  # its sessions trickle
        assert "link" in cross.headers


async def test_the_session_etag_guards_trickle_patches() -> None:
    async with embedded_server(allowed_origins=[APP]) as server, httpx.AsyncClient(base_url=server.url) as http:
        token = server.token("r4", "studio", Role.HOST)
        pc, created = await _publish(http, "/whip/r4", token, Origin=APP)
        try:
            sid = created.headers["location"].rsplit("/", 1)[1]
            etag = created.headers["etag"]
            assert etag == f'"{sid}"'
            assert {"location", "link", "etag"} <= _listed(created.headers["access-control-expose-headers"])
            assert created.headers["access-control-allow-origin"] == APP

            fragment = "a=ice-ufrag:abcd\r\na=ice-pwd:" + "p" * 24 + "\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
            base = {"Content-Type": "application/trickle-ice-sdpfrag", "Authorization": f"Bearer {token}"}
            location = created.headers["location"]
            for if_match, status in (
                (etag, 204),
                (f'"PA_other", {etag}', 204),
                ('"PA_other"', 412),
                ("*", 422),  # an ICE restart: trickle is supported, restarts are not (RFC 9725 section 4.3.1)
            ):
                patched = await http.patch(
                    location, content=fragment + "a=end-of-candidates\r\n", headers={**base, "If-Match": if_match}
                )
                assert patched.status_code == status, (if_match, patched.text)
                if status >= 400:
                    assert patched.json()["code"] == "negotiation_failed"
                else:
                    assert "etag" not in patched.headers  # RFC 9725 section 4.3.2: none on a trickle
            older = await http.patch(location, content=fragment, headers=base)  # no If-Match: clients before the RFC
            assert older.status_code == 204
            stopped = await http.delete(location, headers={"Authorization": f"Bearer {token}", "If-Match": '"x"'})
            assert stopped.status_code == 200  # a DELETE ignores entity-tags (RFC 9725 section 4.3.1)
        finally:
            await pc.close()


async def test_a_shows_public_whep_honors_the_shops_own_origins() -> None:
    async with embedded_server(allowed_origins=[APP]) as server, httpx.AsyncClient(base_url=server.url) as http:
        show = await _show_of_shop_with_site(server)
        whep = f"/v1/live/acme/{show['id']}/whep"
        for origin in (SHOP_SITE, APP):
            for method in ("POST", "PATCH", "DELETE"):
                answer = await http.options(whep, headers=_preflight(origin, method, "content-type, if-match"))
                assert answer.status_code in (200, 204), (origin, method, answer.text)
                assert answer.headers["access-control-allow-origin"] == origin
                assert method.lower() in _listed(answer.headers["access-control-allow-methods"])
                assert {"content-type", "if-match"} <= _listed(answer.headers["access-control-allow-headers"])
        refused = await http.options(whep, headers=_preflight(STRANGER, "POST"))
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        other_shop = await http.options("/whep/r5", headers=_preflight(SHOP_SITE, "POST"))
        assert other_shop.status_code == 400  # the shop's origins reach its shows only

        console = await console_client(server, show)
        settings = (await console.get("/v1/live/console")).json()
        await console.aclose()
        encoder, _ = await _publish(http, settings["whip_url"], settings["stream_key"])
        player = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            player.addTransceiver("video", direction="recvonly")
            await player.setLocalDescription(await player.createOffer())
            played = await http.post(whep, content=player.localDescription.sdp, headers={**SDP, "Origin": SHOP_SITE})
            assert played.status_code == 201, played.text
            assert played.headers["access-control-allow-origin"] == SHOP_SITE
            assert {"location", "etag"} <= _listed(played.headers["access-control-expose-headers"])
            stranger = await http.post(whep, content=player.localDescription.sdp, headers={**SDP, "Origin": STRANGER})
            assert "access-control-allow-origin" not in stranger.headers
            stopped = await http.delete(played.headers["location"], headers={"Origin": SHOP_SITE})
            assert stopped.status_code == 200 and stopped.headers["access-control-allow-origin"] == SHOP_SITE
        finally:
            await player.close()
            await encoder.close()


async def _show_of_shop_with_site(server: RunningServer) -> dict[str, Any]:
    """A show of shop ``acme``, whose own site is ``SHOP_SITE`` (not in ``VITRINE_ALLOWED_ORIGINS``)."""
    await make_shop(server, "acme")  # on https://acme.example, where its products are
    async with server.api() as api:
        moved = await api.patch("/v1/shops/acme", json={"allowed_origins": ["https://acme.example", SHOP_SITE]})
        moved.raise_for_status()
        created = await api.post("/v1/shops/acme/shows", json={"title": "Drop", "products": ["mug-1"]})
        created.raise_for_status()
        return dict(created.json())
