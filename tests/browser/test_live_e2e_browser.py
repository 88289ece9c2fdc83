"""A whole show through the real pages, in Debian Chromium: the seller's console goes live from its
camera, two shoppers watch on web/watch.html, chat goes both ways, a pinned product reaches both, a
banned viewer's message is refused, and the replay plays once the show ends. Then the same from an
OBS-like encoder: an aiortc WHIP publisher with the show's stream key, watched in the browser."""

from __future__ import annotations

import httpx
import pytest

from tests.browser_support import DESKTOP, STATE_TIMEOUT_S, playwright_api
from tests.live_browser_helpers import open_console, open_viewer, wait_video_plays, watch_url
from tests.live_helpers import make_show, obs_publish
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

expect = playwright_api.expect
TIMEOUT_MS = int(STATE_TIMEOUT_S * 1000)


async def _say(viewer, text: str) -> None:  # noqa: ANN001 - a WatchedPage
    await viewer.page.locator(".vl-chat-input").fill(text)
    await viewer.page.locator(".vl-chat-input").press("Enter")


async def test_a_show_from_the_console_to_two_viewers_and_its_replay(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    console, _ = await open_console(browser, server, show)
    url = watch_url(server, show)
    tabs = [console]
    try:
        await console.go_live_with_camera()
        kim = await open_viewer(browser, url, "kim", stored_name="Kim")
        lu = await open_viewer(browser, url, "lu", viewport=DESKTOP, stored_name="Lu")
        tabs += [kim, lu]
        for viewer in (kim, lu):
            await wait_video_plays(viewer)  # the console's fake camera, through the worker
            assert await viewer.page.evaluate("window.__getUserMediaCalls") == 0

        await _say(kim, "does the mug fit a latte?")
        await console.chat_line("does the mug fit a latte?")  # viewer -> seller
        await console.page.locator("#chat-input").fill("It holds 350 ml")
        await console.page.locator("#chat-input").press("Enter")
        await console.page.get_by_role("button", name="Pin Mug 1", exact=True).click()
        for viewer in (kim, lu):  # seller -> every viewer, and the pinned card with its buy link
            await expect(viewer.page.locator(".vl-chat .vl-line.is-host .vl-line-text")).to_have_text(
                "It holds 350 ml", timeout=TIMEOUT_MS
            )
            card = viewer.page.locator('.vl-stage .vl-card[data-sku="mug-1"]')
            await expect(card).to_be_visible(timeout=TIMEOUT_MS)
            assert await card.locator("a.vl-buy").get_attribute("href") == "https://acme.example/p/mug-1"

        await _say(lu, "first!!!")
        line = await console.chat_line("first!!!")
        await line.get_by_role("button", name="Ban Lu", exact=True).click()
        await console.confirm()
        await expect(lu.page.locator(".vl-notice")).to_have_text(
            "You were removed from this show by the host.", timeout=TIMEOUT_MS
        )
        await expect(lu.page.locator(".vl-chat-input")).to_be_disabled()
        async with httpx.AsyncClient(base_url=server.url) as http:  # nor can Lu slip back in with that identity
            log = (await http.get(f"/v1/live/acme/{show['id']}/log")).json()["entries"]
        banned = next(e for e in log if e["kind"] == "moderation" and e["moderation"]["action"] == "ban")
        assert banned["moderation"]["identity"] == line_identity(log, "first!!!")

        await console.page.locator("#end-show").click()
        await console.confirm()
        await console.phase("ended")
        await expect(kim.page.locator(".vl-layout.is-replay")).to_be_visible(timeout=TIMEOUT_MS)
        async with httpx.AsyncClient(base_url=server.url) as http:
            replay = (await http.get(f"/v1/live/acme/{show['id']}")).json()["replay"]
        assert replay["media_url"] is not None and replay["duration_ms"] > 0  # the worker recorded the show
        assert [c["card"]["sku"] for c in replay["chapters"]] == ["mug-1"]
        video = 'document.querySelector("video.vl-video")'
        await kim.page.evaluate(f"() => {{ {video}.muted = true; return {video}.play(); }}")
        await kim.wait_for(f"() => {video}.currentTime > 0.5 && {video}.videoWidth > 0", what="the replay to play")
        await expect(kim.page.locator(".vl-chapter .vl-chapter-title")).to_have_text("Mug 1")
    finally:
        for tab in tabs:
            await tab.close()


def line_identity(log: list[dict], text: str) -> str:
    return next(e["participant"]["identity"] for e in log if e["kind"] == "chat" and e["text"] == text)


async def test_an_obs_like_encoder_goes_live_and_a_browser_watches(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    async with server.api() as api:
        login = (await api.post(f"/v1/shops/acme/shows/{show['id']}/console")).json()["token"]
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {login}"}) as http:
        settings = (await http.get("/v1/live/console")).json()
        encoder, _ = await obs_publish(http, settings)
    viewer = await open_viewer(browser, watch_url(server, show), "viewer")
    try:
        await wait_video_plays(viewer)
        assert await viewer.page.evaluate("window.__getUserMediaCalls") == 0
    finally:
        await viewer.close()
        await encoder.close()
