"""Live shows over real sockets: the show's life, host actions reaching every viewer, moderation,
forged host actions refused, deals, reactions, analytics and the chat export (memory and Redis)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.desk_helpers import DeskClient
from tests.live_helpers import entries, go_live, join, make_show, viewer_token
from tests.servers import RunningServer, embedded_server


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def live_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        yield running


async def _error(client: DeskClient, ref: str, after: int) -> dict:
    return await client.expect("error", lambda m: m.get("ref") == ref, after=after)


async def test_a_show_goes_live_and_every_viewer_sees_pins_chat_and_the_end(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    assert show["state"] == "scheduled" and show["products"] == ["mug-1", "lamp-2"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:  # nobody can watch before it starts
        early = await http.get(f"/v1/live/acme/{show['id']}/viewer", headers={"Origin": "https://acme.example"})
        assert (early.status_code, early.json()["code"]) == (409, "show_not_live")
        assert early.headers["access-control-allow-origin"] == "https://acme.example"  # the embed reads the code
        foreign = await http.get(f"/v1/live/acme/{show['id']}", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in foreign.headers
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    viewers = [await join(live_server, await viewer_token(live_server, show, name)) for name in ("Kim", "Lu")]
    joined = viewers[0].of("joined")[0]
    assert joined["live"]["state"] == "live" and joined["live"]["pinned"] == []
    assert "participant_joined" not in [m.get("event") for m in host.of("event")]  # viewers are hidden

    await host.send({"type": "product", "action": "pin", "sku": "mug-1"})
    await host.expect("log", lambda m: m["entry"]["kind"] == "product")
    await viewers[1].send({"type": "chat", "text": "how big is it?"})
    await host.expect("log", lambda m: m["entry"].get("text") == "how big is it?")
    await host.send({"type": "chat", "text": "12 cm tall"})
    for client in (host, *viewers):
        await client.expect("log", lambda m: m["entry"].get("text") == "12 cm tall")
        (pin,) = entries(client, "product")
        assert pin["product"]["action"] == "pin" and pin["product"]["card"]["url"] == "https://acme.example/p/mug-1"
        assert [e["text"] for e in entries(client, "chat")] == ["how big is it?", "12 cm tall"]

    late = await join(live_server, await viewer_token(live_server, show, "Late"))  # a late joiner draws the pins
    assert [c["sku"] for c in late.of("joined")[0]["live"]["pinned"]] == ["mug-1"]

    ended = (await console.post("/v1/live/console/end")).json()
    assert ended["show"]["state"] == "ended"
    for client in (*viewers, late):
        await client.expect("leave", lambda m: m["code"] == "show_ended")
        assert entries(client, "show")[-1]["show"] == "ended"
    async with httpx.AsyncClient(base_url=live_server.url) as http:  # the log stays for the replay
        view = (await http.get(f"/v1/live/acme/{show['id']}")).json()
        log = (await http.get(f"/v1/live/acme/{show['id']}/log")).json()
    assert view["state"] == "ended" and [c["card"]["sku"] for c in view["replay"]["chapters"]] == ["mug-1"]
    assert [e["kind"] for e in log["entries"]] == ["show", "product", "chat", "chat", "show"]
    await console.aclose()


async def test_viewers_cannot_forge_host_actions(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    viewer = await join(live_server, await viewer_token(live_server, show))
    mark = viewer.mark()
    forged = [
        {"type": "product", "action": "pin", "sku": "mug-1"},
        {"type": "deal", "action": "start", "sku": "mug-1", "price": "1.00", "duration_s": 60},
        {"type": "moderate", "action": "ban", "identity": "host"},
        {"type": "moderate", "action": "slow_mode", "seconds": 30},
    ]
    for message in forged:
        await viewer.send(message)
        refused = await _error(viewer, message["type"], mark)
        assert refused["code"] == "permission_denied"
        mark = viewer.mark()
    await viewer.send({"type": "chat", "text": "still here"})
    await host.expect("log", lambda m: m["entry"].get("text") == "still here")
    assert entries(host, "product") == [] and entries(host, "deal") == [] and entries(host, "moderation") == []
    await host.send({"type": "product", "action": "pin", "sku": "not-in-show"})
    assert (await _error(host, "product", 0))["code"] == "product_not_found"
    await console.aclose()


async def test_a_banned_viewer_is_removed_and_stays_out(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    token = await viewer_token(live_server, show, "Troll")
    troll = await join(live_server, token)
    identity = troll.of("joined")[0]["participant"]["identity"]
    await troll.send({"type": "chat", "text": "spam"})
    line = (await host.expect("log", lambda m: m["entry"].get("text") == "spam"))["entry"]

    await host.send({"type": "moderate", "action": "delete", "seq": line["seq"]})
    await host.send({"type": "moderate", "action": "ban", "identity": identity})
    await troll.expect("leave", lambda m: m["code"] == "banned")
    back = await DeskClient.connect(live_server.ws_url)
    await back.send({"type": "join", "token": token})
    assert (await back.expect("error"))["code"] == "banned"
    actions = [e["moderation"]["action"] for e in entries(await _settled(host, 2), "moderation")]
    assert actions == ["delete", "ban"]
    history = await join(live_server, await viewer_token(live_server, show))
    await history.send({"type": "history"})
    assert "spam" not in [e.get("text") for e in (await history.expect("history"))["entries"]]
    await console.aclose()


async def _settled(client: DeskClient, moderations: int) -> DeskClient:
    await client.expect("log", lambda m: m["entry"]["kind"] == "moderation", count=moderations)
    return client


async def test_mute_and_slow_mode_hold_back_a_viewer(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    viewer = await join(live_server, await viewer_token(live_server, show))
    identity = viewer.of("joined")[0]["participant"]["identity"]
    await host.send({"type": "moderate", "action": "mute", "identity": identity, "seconds": 600})
    await viewer.expect("log", lambda m: m["entry"]["kind"] == "moderation")
    mark = viewer.mark()
    await viewer.send({"type": "chat", "text": "let me talk"})
    assert (await _error(viewer, "chat", mark))["code"] == "muted"
    await host.send({"type": "moderate", "action": "unmute", "identity": identity})
    await host.send({"type": "moderate", "action": "slow_mode", "seconds": 600})
    await viewer.expect("log", lambda m: m["entry"]["kind"] == "moderation", count=3)
    mark = viewer.mark()
    await viewer.send({"type": "chat", "text": "first"})
    await viewer.send({"type": "chat", "text": "second"})
    refused = await _error(viewer, "chat", mark)
    assert refused["code"] == "rate_limited" and "slow mode" in refused["message"]
    await host.send({"type": "chat", "text": "hosts are not slowed"})
    await host.send({"type": "chat", "text": "at all"})
    await viewer.expect("log", lambda m: m["entry"].get("text") == "at all")
    assert [e["text"] for e in entries(viewer, "chat")] == ["first", "hosts are not slowed", "at all"]
    await console.aclose()


async def test_pins_are_capped_and_deals_run_out_of_stock(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    async with live_server.api() as api:
        for sku in ("cup-3", "bowl-4"):
            (
                await api.put(
                    f"/v1/shops/acme/products/{sku}",
                    json={"title": sku, "price": "5.00", "currency": "EUR", "url": f"https://acme.example/p/{sku}"},
                )
            ).raise_for_status()
        (
            await api.patch(
                f"/v1/shops/acme/shows/{show['id']}", json={"products": ["mug-1", "lamp-2", "cup-3", "bowl-4"]}
            )
        ).raise_for_status()
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    for sku in ("mug-1", "lamp-2", "cup-3", "bowl-4"):
        await host.send({"type": "product", "action": "pin", "sku": sku})
    refused = await _error(host, "product", 0)
    assert refused["code"] == "invalid_message" and "at most 3" in refused["message"]

    await host.send(
        {"type": "deal", "action": "start", "sku": "lamp-2", "price": "59.00", "stock": 2, "duration_s": 300}
    )
    await host.expect("log", lambda m: m["entry"]["kind"] == "deal")  # the deal is on: a joiner finds it running
    viewer = await join(live_server, await viewer_token(live_server, show))
    deal = viewer.of("joined")[0]["live"]["deal"]
    assert (deal["card"]["sku"], deal["price"], deal["stock"]) == ("lamp-2", "59.00", 2)
    for _ in range(2):
        await viewer.send({"type": "click", "sku": "lamp-2", "action": "add_to_cart"})
    await viewer.send({"type": "click", "sku": "mug-1"})
    changes = await viewer.expect("log", lambda m: m["entry"]["kind"] == "deal", count=2)
    assert [e["deal"]["action"] for e in entries(viewer, "deal")] == ["update", "end"]
    assert changes["entry"]["deal"]["deal"]["stock"] == 0
    sold = await viewer.expect("log", lambda m: m["entry"]["kind"] == "product")
    assert (sold["entry"]["product"]["action"], sold["entry"]["product"]["card"]["sku"]) == ("sold_out", "lamp-2")
    analytics = (await console.get("/v1/live/console")).json()["analytics"]
    assert (analytics["add_to_cart"], analytics["product_clicks"], analytics["clicks_by_sku"]) == (2, 1, {"mug-1": 1})
    await console.aclose()


async def test_reactions_are_summed_and_counted(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    viewers = [await join(live_server, await viewer_token(live_server, show)) for _ in range(2)]
    for viewer in viewers:
        for reaction in ("like", "like", "fire"):
            await viewer.send({"type": "react", "reaction": reaction})

    def counted(client: DeskClient) -> dict[str, int]:
        total: dict[str, int] = {}
        for entry in entries(client, "reactions"):
            for kind, n in entry["reactions"].items():
                total[kind] = total.get(kind, 0) + n
        return total

    await host.expect("live", lambda m: m["likes"] == 6)  # the count everyone sees
    assert counted(host) == {"like": 4, "fire": 2}
    assert len(entries(host, "reactions")) < 6  # summed, not one entry per tap
    mark = viewers[0].mark()
    for _ in range(12):
        await viewers[0].send({"type": "react"})
    assert (await _error(viewers[0], "react", mark))["code"] == "rate_limited"
    await console.aclose()


async def test_analytics_and_the_chat_export(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    console, host_token = await go_live(live_server, show)
    host = await join(live_server, host_token)
    viewer = await join(live_server, await viewer_token(live_server, show, "Ana"))
    await viewer.send({"type": "chat", "text": '=HYPERLINK("http://evil")'})
    await viewer.send({"type": "chat", "text": "lovely"})
    await host.expect("live", lambda m: m["viewers"] == 1)
    await host.expect("log", lambda m: m["entry"].get("text") == "lovely")
    await viewer.close()
    ended = (await console.post("/v1/live/console/end")).json()
    analytics = ended["analytics"]
    assert (analytics["peak_viewers"], analytics["viewer_sessions"], analytics["messages"]) == (1, 1, 2)
    assert analytics["watch_time_s"] > 0
    async with live_server.api() as api:
        export = await api.get(f"/v1/shops/acme/shows/{show['id']}/chat.csv")
        assert (await api.get(f"/v1/shops/acme/shows/{show['id']}/analytics")).json() == analytics
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["text"] for r in rows] == ['\'=HYPERLINK("http://evil")', "lovely"]  # formulas made inert
    assert rows[0]["name"] == "Ana" and rows[0]["role"] == "viewer"
    await console.aclose()


async def test_the_console_needs_its_own_token(live_server: RunningServer) -> None:
    show = await make_show(live_server)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        assert (await http.get("/v1/live/console")).status_code == 401
        forged = await http.get(
            "/v1/live/console",
            headers={"Authorization": "Bearer " + live_server.token("live-" + show["id"], "host", create=False)},
        )  # a join token is not a console login
        assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")
    console, _ = await go_live(live_server, show)
    view = (await console.get("/v1/live/console")).json()
    assert view["stream_key"].startswith("sk_") and view["whip_url"].endswith(f"/v1/live/acme/{show['id']}/whip")
    rotated = (await console.post("/v1/live/console/stream-key")).json()
    assert rotated["stream_key"] != view["stream_key"]
    await console.aclose()
