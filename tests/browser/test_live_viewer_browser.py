"""The live show viewer (web/watch.html, web/live/player.js), its embed (widget.js data-show) and the
replay, in headless Debian Chromium against a real server and real media.

The host is a browser page publishing Chromium's fake camera through VitrineRoom; it pins products,
runs a deal, chats and moderates over its own socket. Viewers must never be asked for a camera: an
init script counts getUserMedia calls. The shop's catalog lives on https://acme.example; the test
browser answers those URLs itself (product images, the "Buy" page). Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.client import VitrineClient
from tests.browser_support import (
    DESKTOP,
    STATE_TIMEOUT_S,
    ShopPages,
    WatchedPage,
    playwright_api,
)
from tests.desk_helpers import make_shop
from tests.durability_helpers import until
from tests.live_browser_helpers import NAME_KEY, open_viewer, wait_video_plays, watch_url
from tests.live_helpers import go_live
from tests.media_helpers import av_tracks
from tests.recording_helpers import WAIT_S, lose_coordination, recorded
from tests.servers import RunningServer, embedded_server
from vitrine.core.wire.rpc import Kick

pytestmark = pytest.mark.browser

expect = playwright_api.expect
TIMEOUT_MS = int(STATE_TIMEOUT_S * 1000)
EMBED_ROOT = 'document.querySelector("vitrine-live")?.shadowRoot'

# The host: Chromium's fake camera and microphone, published with the shared browser client.
HOST_JOIN = """async ({ token, publish }) => {
  const { VitrineRoom } = await import("/vitrine-client.js");
  const stream = publish
    ? await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true }) : null;
  const room = new VitrineRoom();
  window.chat = []; window.errors = []; window.counts = [];
  room.addEventListener("chat", (e) => window.chat.push(e.detail));
  room.addEventListener("live", (e) => window.counts.push(e.detail));
  room.addEventListener("error", (e) => window.errors.push(e.detail));
  await room.connect({ token, stream, publish });
  window.room = room;
}"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The embedded server, its show recordings under this test's own directory."""
    async with embedded_server(recordings_dir=str(tmp_path / "recordings")) as running:
        yield running


async def create_show(server: RunningServer, *, origins: list[str] = (), **setup: Any) -> dict[str, Any]:
    """Shop "acme" (mug-1, lamp-2 on https://acme.example, embeddable on ``origins``) and a scheduled show."""
    await make_shop(server, "acme", allowed_origins=[*origins, "https://acme.example"], link_hosts=["acme.example"])
    async with server.api() as api:
        response = await api.post(
            "/v1/shops/acme/shows", json={"title": "Spring drop", "products": ["mug-1", "lamp-2"], **setup}
        )
        response.raise_for_status()
        return response.json()


async def open_host(
    browser: playwright_api.Browser, server: RunningServer, token: str, *, publish: bool = True
) -> WatchedPage:
    context = await browser.new_context(permissions=["camera", "microphone"])
    host = WatchedPage(page=await context.new_page(), name="host")
    await host.page.goto(server.url + "/")
    await host.page.evaluate(HOST_JOIN, {"token": token, "publish": publish})
    return host


async def chat_texts(tab: WatchedPage) -> list[str]:
    return await tab.page.locator(".vl-chat .vl-line-text").all_text_contents()


async def host_chat(host: WatchedPage, text: str) -> dict[str, Any]:
    """The host's own client receives ``text`` as a chat line: the entry."""
    await host.wait_for("(text) => window.chat.some((e) => e.text === text)", text, what=f"chat {text!r} on the host")
    return await host.page.evaluate("(text) => window.chat.find((e) => e.text === text)", text)


async def analytics(console: httpx.AsyncClient) -> dict[str, Any]:
    return (await console.get("/v1/live/console")).json()["analytics"]


async def wait_analytics(console: httpx.AsyncClient, key: str, value: int) -> None:
    deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_S
    while (numbers := await analytics(console))[key] != value:
        assert asyncio.get_running_loop().time() < deadline, f"analytics {key} never became {value}: {numbers}"
        await asyncio.sleep(0.2)


# -- tests ---------------------------------------------------------------------------------------------------


async def test_two_viewers_watch_chat_and_see_pins_and_the_deal(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await create_show(server, scheduled_at_ms=1_900_000_000_000)
    url = watch_url(server, show)
    kim = await open_viewer(browser, url, "kim")  # before the show: the schedule and the products
    await expect(kim.page.locator(".vl-scheduled .vl-title")).to_have_text("Spring drop", timeout=TIMEOUT_MS)
    await expect(kim.page.locator(".vl-when")).to_contain_text("Starts ", timeout=TIMEOUT_MS)
    await expect(kim.page.locator(".vl-products .vl-card")).to_have_count(2)

    console, host_token = await go_live(server, show)
    host = await open_host(browser, server, host_token)
    lu = await open_viewer(browser, url, "lu", viewport=DESKTOP, stored_name="Lu")
    try:
        for viewer in (kim, lu):  # Kim's page notices the start by itself
            await wait_video_plays(viewer)
            await expect(viewer.page.locator(".vl-viewers")).to_have_text("2 watching", timeout=TIMEOUT_MS)
            await expect(viewer.page.locator(".vl-unmute")).to_be_visible()
            assert await viewer.page.evaluate("window.__getUserMediaCalls") == 0, viewer.diagnostics()
        await lu.page.locator(".vl-unmute").click()
        assert await lu.page.evaluate('document.querySelector("video.vl-video").muted') is False
        await expect(lu.page.locator(".vl-unmute")).to_be_hidden()

        # Kim's first message asks for a name; Lu chose one on an earlier visit.
        await kim.page.locator(".vl-chat-input").fill("how big is the mug?")
        await kim.page.locator(".vl-send").click()
        await expect(kim.page.locator(".vl-name-form")).to_be_visible()
        await kim.page.locator(".vl-name-input").fill("Kim")
        await kim.page.locator(".vl-name-form button[type=submit]").click()
        line = await host_chat(host, "how big is the mug?")
        assert line["participant"]["name"] == "Kim" and line["participant"]["role"] == "viewer"
        await expect(kim.page.locator(".vl-chat-as")).to_contain_text("Chatting as Kim")
        assert await kim.page.evaluate(f"localStorage.getItem({json.dumps(NAME_KEY)})") == "Kim"
        await wait_video_plays(kim)  # the new name rejoined: the video is back
        await lu.page.locator(".vl-chat-input").fill("I want the lamp")
        await lu.page.locator(".vl-chat-input").press("Enter")
        assert (await host_chat(host, "I want the lamp"))["participant"]["name"] == "Lu"

        await host.page.evaluate("() => window.room.sendChat('12 cm tall, 350 ml')")
        await host.page.evaluate("() => window.room.product('pin', 'mug-1')")
        await host.page.evaluate("""() => window.room.deal('start', { sku: 'mug-1', price: '9.99', stock: 5,
                                                                      duration_s: 120 })""")
        for viewer in (kim, lu):
            chat = viewer.page.locator(".vl-chat")
            await expect(chat.locator(".vl-line.is-host .vl-line-text")).to_have_text(
                "12 cm tall, 350 ml", timeout=TIMEOUT_MS
            )
            assert await chat_texts(viewer) == ["how big is the mug?", "I want the lamp", "12 cm tall, 350 ml"]
            card = viewer.page.locator('.vl-stage .vl-card[data-sku="mug-1"]')
            await expect(card).to_be_visible(timeout=TIMEOUT_MS)
            await expect(card.locator(".vl-card-title")).to_have_text("Mug 1")
            buy = card.locator("a.vl-buy")
            assert await buy.get_attribute("href") == "https://acme.example/p/mug-1"
            assert await buy.get_attribute("target") == "_blank" and "noopener" in await buy.get_attribute("rel")
            assert await card.locator(".vl-cart").count() == 0  # no shop cart on watch.html
            deal = viewer.page.locator(".vl-deal")
            await expect(deal.locator(".vl-deal-price")).to_have_text("€9.99", timeout=TIMEOUT_MS)
            await expect(deal.locator(".vl-was")).to_have_text("€12.50")
            await expect(deal.locator(".vl-deal-stock")).to_have_text("5 left")
            await expect(card.locator(".vl-price")).to_have_text("€9.99")
            await expect(deal.locator(".vl-deal-clock")).to_have_text(re.compile(r"^Ends in (2:00|1:[0-5]\d)$"))
        before = await kim.page.locator(".vl-deal-clock").text_content()
        await expect(kim.page.locator(".vl-deal-clock")).not_to_have_text(before, timeout=TIMEOUT_MS)  # it counts down

        # Lu reacts: the burst floats up on Kim's page and counts as likes.
        for _ in range(3):
            await lu.page.locator('.vl-react[data-reaction="fire"]').click()
        await kim.wait_for(
            '() => document.querySelectorAll(".vl-floats .vl-float").length > 0', what="floating reactions"
        )
        await expect(kim.page.locator(".vl-likes")).to_have_text("3 likes", timeout=TIMEOUT_MS)

        # "Buy" opens the shop's page in a new tab and is counted for the show.
        async with kim.page.context.expect_page() as popup:
            await kim.page.locator(".vl-stage .vl-buy").click()
        shop_tab = await popup.value
        await shop_tab.wait_for_load_state()
        assert shop_tab.url == "https://acme.example/p/mug-1"
        await wait_analytics(console, "product_clicks", 1)
        assert (await analytics(console))["clicks_by_sku"] == {"mug-1": 1}

        await kim.screenshot("live-viewer-phone.png", full_page=True, animations="disabled")
        await lu.screenshot("live-viewer-desktop.png", full_page=False, animations="disabled")
        for viewer in (kim, lu):
            assert await viewer.page.evaluate("window.__getUserMediaCalls") == 0
            assert not [line for line in viewer.log if line.startswith(("pageerror", "error"))], viewer.diagnostics()
    finally:
        await console.aclose()
        for tab in (kim, lu, host):
            await tab.close()


async def test_a_reconnect_moderation_and_a_banned_viewer_who_stays_out(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await create_show(server)
    console, host_token = await go_live(server, show)
    host = await open_host(browser, server, host_token, publish=False)
    url = watch_url(server, show)
    sent: list[dict[str, Any]] = []
    kim = await open_viewer(browser, url, "kim", stored_name="Kim")
    troll = await open_viewer(browser, url, "troll", stored_name="Troll", sent=sent)
    try:
        for viewer in (kim, troll):
            await expect(viewer.page.locator(".vl-chat-input")).to_be_enabled(timeout=TIMEOUT_MS)
        # Kim's phone changes network: the page says so, and joins again by itself.
        assert server.runtime is not None
        (sid,) = [
            sid
            for sid, session in server.runtime.hub.sessions.items()
            if session.admission and session.admission.participant.name == "Kim"
        ]
        await server.runtime.hub.sessions[sid].on_kick(Kick(sid=sid, reason="network change", reconnect=True))
        banner = kim.page.locator(".vl-banner")
        await expect(banner).to_have_text("Connection lost, reconnecting…", timeout=TIMEOUT_MS)
        await expect(banner).to_be_hidden(timeout=TIMEOUT_MS)
        await expect(kim.page.locator(".vl-chat-input")).to_be_enabled()
        await troll.page.locator(".vl-chat-input").fill("spam spam spam")
        await troll.page.locator(".vl-chat-input").press("Enter")
        spam = await host_chat(host, "spam spam spam")
        await expect(kim.page.locator(".vl-chat .vl-line-text")).to_have_text(["spam spam spam"], timeout=TIMEOUT_MS)

        # The room's last count pushed says 2 (counts are pushed when they change), so the ban's drop to 1 shows.
        await host.wait_for(
            "() => window.counts.length > 0 && window.counts.at(-1).viewers === 2", what="a count of 2 viewers"
        )
        await host.page.evaluate("(seq) => window.room.moderate('delete', { seq })", spam["seq"])
        await host.page.evaluate(
            "(identity) => window.room.moderate('ban', { identity })", spam["participant"]["identity"]
        )
        await expect(kim.page.locator(".vl-chat .vl-line")).to_have_count(0, timeout=TIMEOUT_MS)  # deleted
        notice = troll.page.locator(".vl-notice")
        await expect(notice).to_have_text("You were removed from this show by the host.", timeout=TIMEOUT_MS)
        await expect(troll.page.locator(".vl-chat-input")).to_be_disabled()
        await expect(troll.page.locator(".vl-send")).to_be_disabled()
        assert await troll.page.locator(".vl-react:enabled").count() == 0

        # The show goes on without the troll: the host pins Kim's question and slows the chat down.
        await kim.page.locator(".vl-chat-input").fill("is the lamp dimmable?")
        await kim.page.locator(".vl-chat-input").press("Enter")
        question = await host_chat(host, "is the lamp dimmable?")
        await host.page.evaluate("(seq) => window.room.moderate('pin_message', { seq })", question["seq"])
        await expect(kim.page.locator(".vl-pinned-message")).to_have_text(
            "📌Kim is the lamp dimmable?", timeout=TIMEOUT_MS
        )
        await host.page.evaluate("() => window.room.moderate('slow_mode', { seconds: 30 })")
        await expect(kim.page.locator(".vl-slow")).to_have_text("Slow mode: one message every 30 s", timeout=TIMEOUT_MS)
        for text in ("one", "two"):
            await kim.page.locator(".vl-chat-input").fill(text)
            await kim.page.locator(".vl-chat-input").press("Enter")
        await expect(kim.page.locator(".vl-notice")).to_have_text(
            "Slow mode: one message every 30 s", timeout=TIMEOUT_MS
        )
        await host.page.evaluate("() => window.room.sendChat('back to the mugs')")
        await expect(kim.page.locator(".vl-chat .vl-line-text")).to_have_text(
            ["is the lamp dimmable?", "one", "back to the mugs"], timeout=TIMEOUT_MS
        )
        # Kim's count drops to 1 (pushed every 2 s, long after a reconnect would have happened: the client
        # retries after 0.5 s), and the troll's page never joined again.
        await expect(kim.page.locator(".vl-viewers")).to_have_text("1 watching", timeout=TIMEOUT_MS)
        assert [m["type"] for m in sent].count("join") == 1, sent
        assert await troll.page.locator(".vl-chat .vl-line-text").all_text_contents() == []  # nothing after the ban
        await expect(notice).to_be_visible()
        await troll.screenshot("live-viewer-banned.png", full_page=True, animations="disabled")
    finally:
        await console.aclose()
        for tab in (kim, troll, host):
            await tab.close()


SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>Acme · Spring drop live</title>
<style>
  /* A shop's broad CSS: none of it may reach the player. */
  body {{ margin: 0; font-family: Georgia, serif; background: #f6efe6; color: #2b2118; }}
  main {{ max-width: 760px; margin: 0 auto; padding: 16px; }}
  video, button, p, span {{ border: 6px solid lime !important; font-family: "Comic Sans MS", cursive !important; }}
</style></head>
<body><main><h1>Spring drop, live</h1><p>Watch and shop with us.</p>
<script>window.cartEvents = [];
document.addEventListener("vitrine:add-to-cart", (e) => window.cartEvents.push(e.detail));</script>
<script src="{vitrine}/widget.js" data-shop="acme" data-show="{show}"{target} async></script>
<p>Free shipping over €50.</p><div id="slot"></div></main></body></html>"""


def _live_page(vitrine: str, shows: dict[str, str], path: str, query: dict[str, str]) -> str | None:
    """``/live``: the one line; ``/live?target=<selector>`` puts the player there instead."""
    if path != "/live" or "id" not in shows:
        return None
    target = f' data-target="{escape(query["target"])}"' if "target" in query else ""
    return SHOP_PAGE.format(vitrine=vitrine, show=escape(shows["id"]), target=target)


@pytest.fixture
def shop_pages(server: RunningServer) -> Iterator[tuple[ShopPages, dict[str, str]]]:
    shows: dict[str, str] = {}
    with ShopPages(partial(_live_page, server.url, shows)) as pages:
        yield pages, shows


async def test_the_embed_plays_the_show_on_the_shop_page_and_adds_to_its_cart(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: tuple[ShopPages, dict[str, str]]
) -> None:
    pages, shows = shop_pages
    show = await create_show(server, origins=[pages.origin])
    shows["id"] = show["id"]
    console, host_token = await go_live(server, show)
    host = await open_host(browser, server, host_token)
    await host.page.evaluate("() => window.room.product('pin', 'mug-1')")
    shopper = await open_viewer(browser, pages.url("/live"), "shopper", stored_name="Ana")
    try:
        await wait_video_plays(shopper, EMBED_ROOT)
        placed = await shopper.page.evaluate("""() => {
          const el = document.querySelector("vitrine-live");
          return { after: el.previousElementSibling.tagName,
                   consult: document.querySelectorAll("vitrine-consult").length,
                   border: getComputedStyle(el.shadowRoot.querySelector("video")).borderTopWidth };
        }""")
        assert placed == {"after": "SCRIPT", "consult": 0, "border": "0px"}, placed  # right after the tag, unstyled
        assert await shopper.page.evaluate("window.__getUserMediaCalls") == 0

        card = shopper.page.locator('vitrine-live .vl-card[data-sku="mug-1"]')
        await expect(card).to_be_visible(timeout=TIMEOUT_MS)
        await card.locator(".vl-cart").click()
        await shopper.wait_for("() => window.cartEvents.length === 1", what="a vitrine:add-to-cart event")
        (event,) = await shopper.page.evaluate("window.cartEvents")
        assert event == {
            "sku": "mug-1",
            "show": show["id"],
            "title": "Mug 1",
            "price": "12.50",
            "currency": "EUR",
            "url": "https://acme.example/p/mug-1",
        }, event
        await expect(card.locator(".vl-cart")).to_have_text("Added")
        await wait_analytics(console, "add_to_cart", 1)

        await shopper.page.locator("vitrine-live .vl-chat-input").fill("does it come in green?")
        await shopper.page.locator("vitrine-live .vl-send").click()
        assert (await host_chat(host, "does it come in green?"))["participant"]["name"] == "Ana"
        await shopper.screenshot("live-embed-phone.png", full_page=True, animations="disabled")

        await shopper.page.goto(pages.url("/live", target="#slot"))  # data-target: where the shop wants it
        await expect(shopper.page.locator("#slot > vitrine-live .vl-title")).to_have_text(
            "Spring drop", timeout=TIMEOUT_MS
        )
    finally:
        await console.aclose()
        for tab in (shopper, host):
            await tab.close()


async def test_after_the_show_the_page_plays_the_replay_with_the_chat_in_sync(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await create_show(server)
    console, host_token = await go_live(server, show)
    host = await open_host(browser, server, host_token)
    kim = await open_viewer(browser, watch_url(server, show), "kim", viewport=DESKTOP, stored_name="Kim")
    try:
        await wait_video_plays(kim)
        await host.page.evaluate("() => window.room.product('pin', 'mug-1')")
        await host.page.evaluate("() => window.room.sendChat('welcome to the drop')")
        await host_chat(host, "welcome to the drop")
        # A few seconds of show later (the viewer's own video clock), a second line.
        start = await kim.page.evaluate('document.querySelector("video.vl-video").currentTime')
        await kim.wait_for(
            '(t) => document.querySelector("video.vl-video").currentTime > t + 3', start, what="3 s more of the show"
        )
        await kim.page.locator(".vl-chat-input").fill("see you next week")
        await kim.page.locator(".vl-chat-input").press("Enter")
        await host_chat(host, "see you next week")
        await kim.wait_for(
            '(t) => document.querySelector("video.vl-video").currentTime > t + 5', start, what="2 s more of the show"
        )

        ended = await console.post("/v1/live/console/end")
        assert ended.json()["show"]["state"] == "ended"
        await expect(kim.page.locator(".vl-layout.is-replay")).to_be_visible(timeout=TIMEOUT_MS)
        async with httpx.AsyncClient(base_url=server.url) as http:
            replay = (await http.get(f"/v1/live/acme/{show['id']}")).json()["replay"]
            log = (await http.get(f"/v1/live/acme/{show['id']}/log")).json()["entries"]
        offsets = {e["text"]: e["at_ms"] - replay["started_at_ms"] for e in log if e["kind"] == "chat"}
        chapter = kim.page.locator(".vl-chapter")
        await expect(chapter).to_have_count(1)
        await expect(chapter.locator(".vl-chapter-title")).to_have_text("Mug 1")
        await expect(kim.page.locator(".vl-chapter-img")).to_be_visible()
        lines = kim.page.locator(".vl-chat .vl-line-text")

        assert replay["media_url"] is not None, replay  # the origin worker recorded the show
        video = 'document.querySelector("video.vl-video")'
        assert await kim.page.evaluate(f"{video}.controls") is True
        await kim.wait_for(f"() => {video}.readyState >= 1", what="the recording's metadata")
        await expect(lines).to_have_text([] if offsets["welcome to the drop"] > 0 else ["welcome to the drop"])
        await kim.page.evaluate(f"() => {{ {video}.muted = true; return {video}.play(); }}")
        await kim.wait_for(f"() => {video}.currentTime > 0.5 && {video}.videoWidth > 0", what="the replay to play")
        playback = f"() => ({{at: {video}.currentTime, ended: {video}.ended, paused: {video}.paused}})"
        both = ["welcome to the drop", "see you next week"]
        try:
            await expect(lines).to_have_text(both, timeout=TIMEOUT_MS)
        except AssertionError as exc:  # say where the replay stood: stalled, ended early, or out of sync
            where = await kim.page.evaluate(playback)
            raise AssertionError(f"{exc}\nplayback {where}, {replay=}, {offsets=}") from None
        state = await kim.page.evaluate(playback)
        # In sync: the line shows once the video reaches its moment, or at the end of the recording (a line said
        # after the last frame was recorded shows when the replay ends).
        assert state["ended"] or state["at"] * 1000 >= offsets["see you next week"], (state, replay, offsets)

        # Back to the start: the later line goes; the chapter brings the pin's moment back.
        await kim.page.evaluate(f"() => {{ {video}.pause(); {video}.currentTime = 0; }}")
        await expect(lines).not_to_have_text(["welcome to the drop", "see you next week"], timeout=TIMEOUT_MS)
        assert "see you next week" not in await lines.all_text_contents()
        await chapter.click()
        target = replay["chapters"][0]["offset_ms"] / 1000
        await kim.wait_for(
            f"(t) => Math.abs({video}.currentTime - t) < 1.5 && !{video}.paused", target, what="the chapter's moment"
        )
        await expect(kim.page.locator('.vl-stage .vl-card[data-sku="mug-1"]')).to_be_visible(timeout=TIMEOUT_MS)
        await expect(lines).to_have_text(["welcome to the drop", "see you next week"], timeout=TIMEOUT_MS)
        await kim.screenshot("live-replay.png", full_page=False, animations="disabled")
    finally:
        await console.aclose()
        for tab in (kim, host):
            await tab.close()


@pytest.mark.redis
async def test_a_replay_in_two_parts_plays_on_from_one_to_the_next(
    browser: playwright_api.Browser, tmp_path: Path, redis_db_url: str
) -> None:
    """The show's room changed media worker mid-show (Redis lost its state): the replay plays part 0, then part 1
    by itself, the chat following the wall clock across both, and each chapter opens the part that shows it."""
    async with embedded_server(redis_url=redis_db_url, recordings_dir=str(tmp_path / "recordings")) as server:
        show = await create_show(server)
        console, host_token = await go_live(server, show)
        host = VitrineClient(server.url, host_token, tracks=av_tracks())
        try:
            await host.connect()
            for part, sku in enumerate(("mug-1", "lamp-2")):
                if part == 1:
                    await lose_coordination(server, [host])
                    host = VitrineClient(server.url, host_token, tracks=av_tracks())
                    await host.connect(timeout=WAIT_S)
                await _pin_and_say(server, host, part, sku)
            ended = await console.post("/v1/live/console/end")
            assert ended.status_code == 200, ended.text
        finally:
            await host.close()
            await console.aclose()
        async with httpx.AsyncClient(base_url=server.url) as http:
            replay = (await http.get(f"/v1/live/acme/{show['id']}")).json()["replay"]
            log = (await http.get(f"/v1/live/acme/{show['id']}/log")).json()["entries"]
        assert [p["url"].rsplit("/", 1)[1] for p in replay["parts"]] == ["0", "1"]
        assert [c["part"] for c in replay["chapters"]] == [0, 1]
        said = {e["text"]: e["at_ms"] - replay["started_at_ms"] for e in log if e["kind"] == "chat"}
        kim = await open_viewer(browser, watch_url(server, show), "kim", viewport=DESKTOP)
        try:
            await _play_two_parts(kim, replay, said)
        finally:
            await kim.close()


async def _pin_and_say(server: RunningServer, host: VitrineClient, part: int, sku: str) -> None:
    """In part ``part`` of the recording, a second into it: the host pins ``sku`` and says so in the chat."""
    room, line = host.joined["room"]["name"], f"said in part {part}"
    await recorded(server, room, part, video_frames=30)
    await host.send({"type": "product", "action": "pin", "sku": sku})
    await host.send({"type": "chat", "text": line})
    await until(lambda: any(e.get("text") == line for e in host.log), f"{line!r} in the log")
    await recorded(server, room, part, video_frames=60)  # the line well inside the part


async def _play_two_parts(kim: WatchedPage, replay: dict[str, Any], said: dict[str, int]) -> None:
    """The replay page on a recording in two parts; ``said``: each chat line's offset from the first part's start."""
    video = 'document.querySelector("video.vl-video")'
    lines = kim.page.locator(".vl-chat .vl-line-text")
    part_label = kim.page.locator(".vl-part")
    first, second = replay["parts"]
    pin0, pin1 = replay["chapters"]
    await expect(kim.page.locator(".vl-layout.is-replay")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(part_label).to_have_text("Part 1 of 2")
    chapters = kim.page.locator(".vl-chapter")
    await expect(chapters.locator(".vl-chapter-title")).to_have_text(["Mug 1", "Lamp 2"])
    times = [pin0["offset_ms"], first["duration_ms"] + pin1["offset_ms"]]  # on the parts played back to back
    await expect(chapters.locator(".vl-chapter-time")).to_have_text([f"0:{ms // 1000:02d}" for ms in times])
    await kim.wait_for(f"() => {video}.readyState >= 1", what="part 0's metadata")

    # Played from the start: part 0's line, then part 1 carries on by itself, and its line comes in its time.
    await kim.page.evaluate(f"() => {{ {video}.muted = true; return {video}.play(); }}")
    await expect(lines).to_have_text(["said in part 0"], timeout=TIMEOUT_MS)
    await kim.wait_for(
        f"() => {video}.src.endsWith('/recording/1') && {video}.currentTime > 0.2 && !{video}.paused",
        what="part 1 to play on after part 0",
    )
    await expect(part_label).to_have_text("Part 2 of 2")
    await expect(lines).to_have_text(["said in part 0", "said in part 1"], timeout=TIMEOUT_MS)
    wall = await kim.page.evaluate(f"{video}.currentTime * 1000") + second["started_at_ms"] - replay["started_at_ms"]
    assert wall >= said["said in part 1"], "a line shows once the video reaches its moment, on the wall clock"

    # The first chapter goes back into part 0: the later line goes, its pin shows.
    await chapters.nth(0).click()
    await kim.wait_for(
        f"(t) => {video}.src.endsWith('/recording/0') && Math.abs({video}.currentTime - t) < 1.5",
        pin0["offset_ms"] / 1000,
        what="the first chapter's moment in part 0",
    )
    await expect(part_label).to_have_text("Part 1 of 2")
    await expect(kim.page.locator('.vl-stage .vl-card[data-sku="mug-1"]')).to_be_visible(timeout=TIMEOUT_MS)
    # The chat follows on the seek's own event, a moment after currentTime moved: wait for it, do not sample.
    await expect(lines.filter(has_text="said in part 1")).to_have_count(0, timeout=TIMEOUT_MS)
    # The second opens part 1 at its moment.
    await chapters.nth(1).click()
    await kim.wait_for(
        f"(t) => {video}.src.endsWith('/recording/1') && Math.abs({video}.currentTime - t) < 1.5",
        pin1["offset_ms"] / 1000,
        what="the second chapter's moment in part 1",
    )
    await expect(kim.page.locator('.vl-stage .vl-card[data-sku="lamp-2"]')).to_be_visible(timeout=TIMEOUT_MS)
    await expect(lines).to_contain_text(["said in part 0"], timeout=TIMEOUT_MS)
    await kim.screenshot("live-replay-parts.png", full_page=False, animations="disabled")
