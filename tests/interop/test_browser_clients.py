"""Outside WHIP/WHEP browser clients, from npm, publish and play through Vitrine from another origin (issue 16).

Medooze's whip.js/whep.js and Eyevinn's whip-web-client and webrtc-player run in headless Chromium on a page
of another origin (tests/interop/browser_clients_support.py), so every request is cross-origin: Eyevinn's
OPTIONS for ICE servers, its ETag trickle PATCHes, Medooze's If-Match trickle PATCHes, the DELETEs. Each
publisher publishes the fake camera into a room and each player plays it: a frame is decoded (``videoWidth``)
and ``framesDecoded`` keeps growing. A show's public WHEP plays from an origin that only the shop lists, and
its players learn when OBS stops. The rows of the README's compatibility table are written to
test-artifacts/interop-browser-clients.json.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiortc import RTCPeerConnection

from tests.browser_support import ARTIFACTS, WatchedPage, chromium
from tests.desk_helpers import make_shop
from tests.interop.browser_clients_support import CLIENTS, PAGE, bundle, client_versions, row, serve_clients
from tests.live_helpers import obs_publish
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role
from vitrine.core.wire.live import show_room

WAIT_S = 45.0  # a loaded 2-core machine runs Chromium, the server and its worker
MORE_FRAMES = 15  # framesDecoded must grow by this much after the first frame: the video keeps playing
PUBLISHERS = {"medooze": "Medooze whip-whep (whip.js / whep.js)", "eyevinn": "Eyevinn @eyevinn/whip-web-client"}
PLAYERS = {"medooze": "Medooze whip-whep (whip.js / whep.js)", "eyevinn": "Eyevinn @eyevinn/webrtc-player"}


async def _until(check: Callable[[], Awaitable[bool]], what: str, page: WatchedPage, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, await page.timed_out(what)
        await asyncio.sleep(0.1)


async def _plays(page: WatchedPage, name: str) -> None:
    """The player's video shows a decoded frame, and keeps decoding."""
    await page.wait_for(f"() => interop.videoWidth({name!r}) > 0", what=f"{name}: a decoded frame in its <video>")
    first = await page.page.evaluate("(n) => interop.framesDecoded(n)", name)
    await page.wait_for(
        "([n, f]) => interop.framesDecoded(n).then((now) => now >= f)",
        arg=[name, first + MORE_FRAMES],
        what=f"{name}: framesDecoded past {first + MORE_FRAMES}",
    )


async def _identities(server: RunningServer, room: str) -> set[str]:
    async with server.api() as api:
        response = await api.get(f"/v1/rooms/{room}")
        return {p["identity"] for p in response.json()["participants"]} if response.status_code == 200 else set()


class Requests:
    """What the page sent to Vitrine, as the browser saw it: method, path, status and request headers."""

    def __init__(self, page: WatchedPage, server: RunningServer) -> None:
        self.seen: list[tuple[str, str, int, dict[str, str]]] = []
        page.page.on("response", self._response)
        self._prefix = server.url

    def _response(self, response: Any) -> None:
        request = response.request
        if request.url.startswith(self._prefix):
            self.seen.append((request.method, request.url[len(self._prefix) :], response.status, request.headers))

    def of(self, method: str, path_part: str) -> list[tuple[int, dict[str, str]]]:
        return [(status, headers) for m, path, status, headers in self.seen if m == method and path_part in path]


async def test_outside_clients_publish_and_play_a_room_from_another_origin() -> None:
    versions, rows = client_versions(), []
    with serve_clients(bundle()) as pages:
        async with embedded_server(allowed_origins=[pages.origin]) as server, chromium() as browser:
            page = WatchedPage(await (await browser.new_context()).new_page(), "clients")
            requests = Requests(page, server)
            await page.page.goto(pages.url(PAGE))
            await page.page.evaluate("() => interop.camera()")  # granted: host candidates are not mDNS names
            worker = server.runtime.media_worker
            for publisher, label in PUBLISHERS.items():
                room, name = f"interop-{publisher}", f"publisher-{publisher}"
                token = server.token(room, f"studio-{publisher}", Role.HOST)
                whip = f"{server.url}/whip/{room}"
                await page.page.evaluate("(a) => interop.publish(...a)", [publisher, name, whip, token])

                async def published(room: str = room) -> bool:
                    return room in worker.rooms and len(worker.rooms[room].ups) == 2

                await _until(published, f"{publisher}: its audio and video on the worker", page)
                rows.append(row(label, versions[label], "WHIP publish (Chromium)", "pass"))
                for player, player_label in PLAYERS.items():
                    viewer = server.token(room, f"{player}-viewer", Role.VIEWER, create=False)
                    watch = f"{player}-plays-{publisher}"
                    whep = f"{server.url}/whep/{room}"
                    await page.page.evaluate("(a) => interop.play(...a)", [player, watch, whep, viewer])
                    await _plays(page, watch)
                    rows.append(row(player_label, versions[player_label], f"WHEP play of {publisher}'s WHIP", "pass"))

                for session in [f"{player}-plays-{publisher}" for player in PLAYERS] + [name]:
                    await page.page.evaluate("(n) => interop.stop(n)", session)  # each client's own DELETE

                async def emptied(room: str = room) -> bool:
                    return not await _identities(server, room)

                await _until(emptied, f"{room}: every client's DELETE", page)

            for status, headers in requests.of("PATCH", "/whip/interop-medooze/"):
                assert status == 204 and headers.get("if-match", "").startswith('"')  # trickle with the ETag
            assert requests.of("PATCH", "/whip/interop-medooze/"), "Medooze trickled its candidates"
            eyevinn_trickle = requests.of("PATCH", "/whip/interop-eyevinn/")
            assert eyevinn_trickle and all(status == 204 and "etag" in h for status, h in eyevinn_trickle)
            options = requests.of("OPTIONS", "/whip/interop-eyevinn")
            assert options and options[0][0] == 200  # its ICE-server OPTIONS, cross-origin
            deletes = {path: status for method, path, status, _ in requests.seen if method == "DELETE"}
            assert len(deletes) == 6 and set(deletes.values()) <= {200, 404}, deletes
            # Eyevinn's clients DELETE, then close: 200. Medooze's close first, and the server has already
            # let the closed peer go when their DELETE comes: 404, nothing left to end.
            assert len([s for s in deletes.values() if s == 200]) >= 3, deletes
            assert not [line for line in page.log if "CORS" in line or "Failed to fetch" in line], page.diagnostics()
    _write_rows("rooms", rows)


async def test_a_shows_public_whep_plays_from_the_shops_own_origin_and_players_learn_obs_stopped() -> None:
    versions, rows = client_versions(), []
    with serve_clients(bundle()) as pages:
        async with embedded_server(whep_new_every_s=0) as server, chromium() as browser:
            assert pages.origin not in server.settings.allowed_origins
            show = await _show_of(server, pages.origin)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                encoder, resource, key = await _obs_goes_live(server, http, show)
                try:
                    page = WatchedPage(await (await browser.new_context()).new_page(), "shop page")
                    await page.page.goto(pages.url(PAGE))
                    await page.page.evaluate("() => interop.camera()")
                    whep = f"{server.url}/v1/live/{show['shop']}/{show['id']}/whep"
                    for player, label in PLAYERS.items():
                        await page.page.evaluate("([c, n, u]) => interop.play(c, n, u, '')", [player, player, whep])
                        await _plays(page, player)
                        rows.append(row(label, versions[label], "WHEP play of a show, from a shop's origin", "pass"))
                    room = server.runtime.media_worker.rooms[show_room(show["id"])]
                    assert len(room.peers) == 3  # OBS and the two players

                    stopped = await http.delete(resource, headers={"Authorization": f"Bearer {key}"})
                    assert stopped.status_code == 200  # OBS stops; the show stays live
                    for player in PLAYERS:  # the server ended their sessions: their connections go
                        await page.wait_for(  # at once: the server's DTLS close
                            f"() => interop.dtlsState({player!r}) === 'closed'",
                            what=f"{player}: its DTLS transport closed once OBS stopped",
                        )
                        await page.wait_for(  # what a generic player watches: Chromium says so within seconds
                            f"() => ['disconnected', 'failed'].includes(interop.connectionState({player!r}))",
                            what=f"{player}: its connection to end once OBS stopped",
                        )
                    assert not room.peers
                finally:
                    await encoder.close()
    _write_rows("show", rows)


async def _show_of(server: RunningServer, origin: str) -> dict[str, Any]:
    """A show of shop ``acme``, whose allowed_origins list ``origin`` (and VITRINE_ALLOWED_ORIGINS does not)."""
    await make_shop(server, "acme")
    async with server.api() as api:
        moved = await api.patch("/v1/shops/acme", json={"allowed_origins": ["https://acme.example", origin]})
        moved.raise_for_status()
        created = await api.post("/v1/shops/acme/shows", json={"title": "Interop", "products": ["mug-1"]})
        created.raise_for_status()
        return dict(created.json())


async def _obs_goes_live(
    server: RunningServer, http: httpx.AsyncClient, show: dict[str, Any]
) -> tuple[RTCPeerConnection, str, str]:
    """An aiortc encoder publishes with the show's stream key (as OBS does); the show goes live."""
    async with server.api() as api:
        console = await api.post(f"/v1/shops/{show['shop']}/shows/{show['id']}/console")
        console.raise_for_status()
    console_token = console.json()["token"]
    settings = (await http.get("/v1/live/console", headers={"Authorization": f"Bearer {console_token}"})).json()
    pc, location = await obs_publish(http, settings)
    return pc, location, settings["stream_key"]


def _write_rows(part: str, rows: list[dict[str, Any]]) -> None:
    """Keep the compatibility rows this test proved, for the README's table."""
    assert {r["client"] for r in rows} <= set(CLIENTS)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"interop-browser-clients-{part}.json").write_text(json.dumps(rows, indent=2) + "\n")
