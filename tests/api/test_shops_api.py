"""The shops REST API through the real app: tenants, agents, catalog, the URL allow-list, hours."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.servers import RunningServer
from vitrine.core.auth import mint_token
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role

ACME = {
    "id": "acme",
    "name": "Acme",
    "allowed_origins": ["https://www.acme.example"],
    "link_hosts": ["www.acme.example", "*.acme-cdn.example"],
    "timezone": "Europe/Paris",
    "opening_hours": [{"day": "sun", "opens": "09:00", "closes": "18:00"}],
    "languages": ["en", "fr"],
}
MUG = {
    "title": "Mug",
    "price": "12.50",
    "currency": "EUR",
    "url": "https://www.acme.example/p/mug",
    "image_url": "https://eu.acme-cdn.example/mug.jpg",
}


async def test_shop_lifecycle(server: RunningServer) -> None:
    async with server.api() as api:
        created = await api.post("/v1/shops", json=ACME)
        assert created.status_code == 201, created.text
        assert created.json()["link_hosts"] == ["www.acme.example", "*.acme-cdn.example"]
        again = await api.post("/v1/shops", json=ACME | {"name": "Other"})
        assert again.status_code == 409 and again.json()["code"] == "shop_exists"
        forged = await api.post("/v1/shops", json={"id": "beta", "name": "B", "created_at_ms": 1})
        assert forged.status_code == 422 and forged.json()["code"] == "invalid_message"
        assert [s["id"] for s in (await api.get("/v1/shops")).json()] == ["acme"]

        patched = await api.patch("/v1/shops/acme", json={"name": "Acme Ltd", "max_wait_s": 300})
        assert patched.status_code == 200 and patched.json()["name"] == "Acme Ltd"
        assert patched.json()["timezone"] == "Europe/Paris"  # untouched fields kept
        assert (await api.get("/v1/shops/acme")).json()["max_wait_s"] == 300
        bad = await api.patch(
            "/v1/shops/acme",
            json={
                "opening_hours": [
                    {"day": "mon", "opens": "09:00", "closes": "12:00"},
                    {"day": "mon", "opens": "11:00", "closes": "13:00"},
                ]
            },
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_message"
        assert (await api.get("/v1/shops/acme")).json()["opening_hours"] == ACME["opening_hours"]

        assert (await api.delete("/v1/shops/acme")).status_code == 200
        for method in ("GET", "DELETE"):
            missing = await api.request(method, "/v1/shops/acme")
            assert missing.status_code == 404 and missing.json()["code"] == "shop_not_found"
        missing = await api.patch("/v1/shops/acme", json={"name": "x"})
        assert missing.status_code == 404 and missing.json()["code"] == "shop_not_found"


async def test_agents_and_catalog(server: RunningServer) -> None:
    async with server.api() as api:
        await api.post("/v1/shops", json=ACME)
        agent = await api.put("/v1/shops/acme/agents/ana", json={"display_name": "Ana", "languages": ["fr", "en"]})
        assert agent.status_code == 200 and agent.json() == {
            "display_name": "Ana",
            "languages": ["fr", "en"],
            "id": "ana",
            "shop": "acme",
        }
        other_shop = await api.put(
            "/v1/shops/acme/agents/bob", json={"shop": "beta", "display_name": "Bob", "languages": ["en"]}
        )
        assert other_shop.status_code == 400 and other_shop.json()["code"] == "invalid_message"
        assert [a["id"] for a in (await api.get("/v1/shops/acme/agents")).json()] == ["ana"]

        put = await api.put("/v1/shops/acme/products/mug-1", json=MUG)
        assert put.status_code == 200 and put.json()["price"] == "12.50" and put.json()["sku"] == "mug-1"
        other_sku = await api.put("/v1/shops/acme/products/mug-1", json=MUG | {"sku": "mug-2"})
        assert other_sku.status_code == 400 and other_sku.json()["code"] == "invalid_message"
        foreign = await api.put("/v1/shops/acme/products/mug-2", json=MUG | {"image_url": "https://evil.example/x.png"})
        assert foreign.status_code == 422 and foreign.json()["code"] == "url_not_allowed"
        assert foreign.json()["message"].startswith("image_url:")
        plain_http = await api.put("/v1/shops/acme/products/mug-2", json=MUG | {"url": "http://www.acme.example/p"})
        assert plain_http.status_code == 422 and plain_http.json()["message"].startswith("url:")
        assert (await api.get("/v1/shops/acme/products/mug-2")).json()["code"] == "product_not_found"
        assert [p["sku"] for p in (await api.get("/v1/shops/acme/products")).json()] == ["mug-1"]

        assert (await api.delete("/v1/shops/acme/agents/ana")).json()["id"] == "ana"
        gone = await api.get("/v1/shops/acme/agents/ana")
        assert gone.status_code == 404 and gone.json()["code"] == "agent_not_found"
        unknown = await api.put("/v1/shops/nope/products/mug-1", json=MUG)
        assert unknown.status_code == 404 and unknown.json()["code"] == "shop_not_found"
        unknown = await api.put("/v1/shops/No_Such/agents/ana", json={"display_name": "A", "languages": ["en"]})
        assert unknown.status_code == 404 and unknown.json()["code"] == "shop_not_found"


async def test_one_shop_never_sees_another_shops_records(server: RunningServer) -> None:
    async with server.api() as api:
        await api.post("/v1/shops", json=ACME)
        await api.post("/v1/shops", json={"id": "beta", "name": "Beta", "allowed_origins": ["https://beta.example"]})
        await api.put("/v1/shops/acme/products/mug-1", json=MUG)
        await api.put("/v1/shops/acme/agents/ana", json={"display_name": "Ana", "languages": ["en"]})
        assert (await api.get("/v1/shops/beta/products")).json() == []
        assert (await api.get("/v1/shops/beta/agents")).json() == []
        assert (await api.get("/v1/shops/beta/products/mug-1")).status_code == 404
        assert (await api.get("/v1/shops/beta/agents/ana")).status_code == 404
        assert (await api.delete("/v1/shops/beta/products/mug-1")).status_code == 404
        assert (await api.get("/v1/shops/acme/products/mug-1")).status_code == 200
        # Beta's allow-list does not include Acme's hosts either.
        stolen = await api.put("/v1/shops/beta/products/mug-1", json=MUG)
        assert stolen.status_code == 422 and stolen.json()["code"] == "url_not_allowed"
        await api.delete("/v1/shops/acme")
        assert (await api.get("/v1/shops/acme/products")).json()["code"] == "shop_not_found"


async def test_hours(server: RunningServer) -> None:
    async with server.api() as api:
        await api.post("/v1/shops", json=ACME)
        # Saturday 29 March 2025, 21:00 in Paris; the clocks go forward that night.
        closed = (await api.get("/v1/shops/acme/hours", params={"at": "2025-03-29T20:00:00Z"})).json()
        assert closed == {
            "open": False,
            "timezone": "Europe/Paris",
            "now_local": "2025-03-29T21:00:00+01:00",
            "next_opening_local": "2025-03-30T09:00:00+02:00",
            "next_opening_utc": "2025-03-30T07:00:00Z",
        }
        opened = (await api.get("/v1/shops/acme/hours", params={"at": "2025-03-30T07:00:00Z"})).json()
        assert opened["open"] is True and opened["next_opening_local"] == opened["now_local"]
        naive = await api.get("/v1/shops/acme/hours", params={"at": "2025-03-30T07:00:00"})
        assert naive.status_code == 400 and naive.json()["code"] == "invalid_message"
        now = (await api.get("/v1/shops/acme/hours")).json()
        assert now["now_local"].endswith(("+01:00", "+02:00"))
        missing = await api.get("/v1/shops/nope/hours")
        assert missing.status_code == 404 and missing.json()["code"] == "shop_not_found"


async def test_credentials_are_required(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
        for method, path in (
            ("GET", "/v1/shops"),
            ("POST", "/v1/shops"),
            ("GET", "/v1/shops/acme/products"),
            ("PUT", "/v1/shops/acme/products/mug-1"),
            ("GET", "/v1/shops/acme/hours"),
        ):
            response = await anonymous.request(method, path, json=MUG if method != "GET" else None)
            assert response.status_code == 401 and response.json()["code"] == "invalid_token", (method, path)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, auth=("testkey", "wrong")) as wrong:
        assert (await wrong.get("/v1/shops")).status_code == 401


async def _join(server: RunningServer, token: str) -> dict:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "join", "token": token}))
        return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def test_a_shops_tokens_reach_only_its_rooms(server: RunningServer) -> None:
    async with server.api() as api:
        for shop in ("acme", "beta"):
            assert (await api.post("/v1/shops", json=ACME | {"id": shop})).status_code == 201
        room = await api.post("/v1/rooms", json={"name": "consult-1", "shop": "acme"})
        assert room.status_code == 201 and room.json()["shop"] == "acme", room.text
        unknown = await api.post("/v1/rooms", json={"name": "consult-2", "shop": "gamma"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "shop_not_found"

        async def token(shop: str | None, room: str = "consult-1") -> str:
            body = {"room": room, "identity": f"alice-{shop}", "role": "customer"} | ({"shop": shop} if shop else {})
            response = await api.post("/v1/tokens", json=body)
            assert response.status_code == 200, response.text
            return response.json()["token"]

        refused = await api.post(
            "/v1/tokens", json={"room": "consult-1", "identity": "x", "role": "customer", "shop": "gamma"}
        )
        assert refused.status_code == 404 and refused.json()["code"] == "shop_not_found"
        for other in ("beta", None):  # another shop's token, or one of no shop, learns nothing of the room
            answer = await _join(server, await token(other))
            assert (answer["type"], answer["code"], answer["message"]) == ("error", "room_not_found", "no such room")
        joined = await _join(server, await token("acme"))
        assert joined["type"] == "joined" and joined["room"]["shop"] == "acme", joined

    # A shop's token that may create rooms creates them for its own shop only.
    creator = server.token("beta-room", "bob", create=True)
    scoped = mint_token(
        server.settings,
        room="beta-room",
        identity="bob",
        role=Role.AGENT,
        shop="beta",
        grants=ROLE_DEFAULT_GRANTS[Role.AGENT].model_copy(update={"room_create": True}),
    )
    joined = await _join(server, scoped)
    assert joined["type"] == "joined" and joined["room"]["shop"] == "beta", joined
    assert (await _join(server, creator))["code"] == "room_not_found"  # the room exists, but not for it
