"""The seller's live console (web/live.html) in headless Debian Chromium against a real server.

Go live from the camera, switch to the screen without renegotiating, and rejoin after a reload; run
the show (pins, sold out, a deal, chat, pin/delete/mute/ban, slow mode, reactions); end it and read
the numbers and the chat export; go live from OBS with the WHIP URL and key the page shows. Viewers
are Python: a media client (aiortc) where frames matter, a bare socket where log entries do.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.client import VitrineClient
from tests.browser_support import (
    DESKTOP,
    INJECTION,
    STATE_TIMEOUT_MS,
    assert_csp_blocks_inline_handlers,
    playwright_api,
    video_playing,
)
from tests.desk_helpers import DeskClient
from tests.live_browser_helpers import LiveConsole, open_console
from tests.live_helpers import entries, join, make_show, viewer_token
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

TABLET = {"width": 768, "height": 1024}
# The track the console's video sender carries (its peer connections are kept by RECORD_PEER_CONNECTIONS).
SENT_VIDEO_LABEL = """() => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "video");
  return sender ? sender.track.label : null;
}"""


async def log_entry(client: DeskClient, kind: str, where: Any = lambda e: True) -> dict[str, Any]:
    return (await client.expect("log", lambda m: m["entry"]["kind"] == kind and where(m["entry"])))["entry"]


# -- tests ---------------------------------------------------------------------------------------------------


async def test_go_live_from_the_camera_switch_to_the_screen_and_rejoin_after_a_reload(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    console, token = await open_console(browser, server, show)
    viewer = None
    try:
        page = console.page
        await console.phase("setup")
        # The fragment logged in and left the address bar; the token is in this tab's sessionStorage only.
        assert "token" not in page.url
        assert await page.evaluate('sessionStorage.getItem("vitrine.live.token")') == token
        assert await page.evaluate("localStorage.length") == 0
        assert await console.text("#show-state") == "scheduled"
        assert await page.locator("#title").input_value() == "Spring drop"
        assert await page.locator("#show-products .product").count() == 2

        await console.pick("camera")
        await console.wait_for(video_playing(selector="#preview"), what="the camera preview")
        assert await page.locator("#go-live").is_enabled()
        await console.screenshot("live-console-setup.png")
        await page.locator("#go-live").click()
        await console.phase("live")
        await console.connected()
        assert await console.text("#show-state") == "live"

        # A viewer receives the host's camera and microphone.
        viewer = VitrineClient(server.url, await viewer_token(server, show, "Kim"))
        await viewer.connect()
        tracks = await remote_tracks(viewer, 2)
        assert set(tracks) == {"audio", "video"}
        await receive_frames(tracks["video"], 5)
        await console.wait_for('document.getElementById("stat-viewers").textContent === "1"', what="1 viewer")
        assert re.fullmatch(r"\d+:\d\d", await console.text("#stat-elapsed"))

        # Camera -> screen while live: the same sender carries the screen, with no new negotiation.
        negotiations = viewer.negotiations
        assert not (await page.evaluate(SENT_VIDEO_LABEL)).startswith("screen")
        await console.pick("screen")
        await console.wait_for(f"() => ({SENT_VIDEO_LABEL})()?.startsWith('screen')", what="the screen being sent")
        await receive_frames(tracks["video"], 10)
        assert viewer.negotiations == negotiations
        assert await page.evaluate("window.__pcs.length") == 1  # still the first peer connection
        await console.screenshot("live-console-live-screen.png")

        # A reload while live: the console rejoins the show at once and asks to share again.
        await page.reload()
        await console.phase("live")
        await console.connected()
        assert await page.locator("#resume").is_visible()
        await console.wait_for(
            '[...document.querySelectorAll("#chat-log .line.system")]'
            '.some((el) => el.textContent.includes("The show is live."))',
            what="the log before the reload, from history",
        )
        await console.pick("camera")
        await console.wait_for('document.getElementById("resume").hidden', what="the resume prompt to go")
        again = await viewer.next_remote_track("video", timeout=STATE_TIMEOUT_MS / 1000)
        await receive_frames(again, 5)
        console.no_errors()
        assert not any(token in line for line in console.log), "the token must never be logged"
    finally:
        if viewer is not None:
            await viewer.close()
        await console.close()


# PATCH /v1/live/console is answered by whip.py's PATCH /{kind}/{room}/{sid} (trickle), which is
# registered first and matches any three-segment path: the console's token is refused there.
async def test_setup_saves_title_schedule_and_products_and_shows_refusals(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    async with server.api() as api:
        (
            await api.put(
                "/v1/shops/acme/products/cup-3",
                json={"title": "Cup 3", "price": "5.00", "currency": "EUR", "url": "https://acme.example/p/cup-3"},
            )
        ).raise_for_status()
    console, _ = await open_console(browser, server, show)
    try:
        page = console.page
        await console.phase("setup")
        # A new title (markup stays text), a schedule, the products in another order.
        await page.locator("#title").fill("Spring <b>drop</b>")
        await page.locator("#schedule").fill("2031-05-04T18:30")
        await page.get_by_role("button", name="Move down Mug 1", exact=True).click()
        await page.locator("#save-details").click()
        await console.wait_for(
            '["Saved", "Not saved"].includes(document.getElementById("details-state").textContent)',
            what="the save to be answered",
        )
        assert await console.text("#details-state") == "Saved", await console.text("#details-error")
        async with server.api() as api:
            saved = (await api.get(f"/v1/shops/acme/shows/{show['id']}")).json()
        assert (saved["title"], saved["products"]) == ("Spring <b>drop</b>", ["lamp-2", "mug-1"])
        expected_ms = await page.evaluate('new Date("2031-05-04T18:30").getTime()')
        assert saved["scheduled_at_ms"] == expected_ms
        assert await console.text("#show-title") == "Spring <b>drop</b>"
        assert await page.locator("#show-title b").count() == 0

        # A product gone from the catalog meanwhile: the server refuses, the form says why.
        await page.locator("#catalog-pick").select_option("cup-3")
        await page.locator("#add-product").click()
        async with server.api() as api:
            (await api.delete("/v1/shops/acme/products/cup-3")).raise_for_status()
        await page.locator("#save-details").click()
        await console.wait_for(
            'document.getElementById("details-error").dataset.code === "product_not_found"', what="the refusal"
        )
        assert await page.locator("#details-error").is_visible()
        await page.get_by_role("button", name="Remove Cup 3", exact=True).click()
        await page.locator("#save-details").click()
        await console.wait_for('document.getElementById("details-state").textContent === "Saved"', what="saved")
        console.no_errors("status of 404")  # the refused save
    finally:
        await console.close()


async def test_run_the_show_pins_deal_chat_and_moderation(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    console, _ = await open_console(browser, server, show)
    try:
        page = console.page
        await console.go_live_with_camera()
        kim = await join(server, await viewer_token(server, show, "Kim"))
        troll = await join(server, await viewer_token(server, show, "Troll"))

        # Products: pin one, mark the other sold out; every viewer gets the log entries.
        await page.get_by_role("button", name="Pin Mug 1", exact=True).click()
        pin = await log_entry(kim, "product")
        assert (pin["product"]["action"], pin["product"]["card"]["sku"]) == ("pin", "mug-1")
        await console.wait_for('document.getElementById("pinned-count").textContent === "1/3 pinned"', what="1 pinned")
        await page.get_by_role("button", name="Mark Lamp 2 sold out", exact=True).click()
        await log_entry(kim, "product", lambda e: e["product"]["action"] == "sold_out")
        await console.wait_for(
            'document.querySelector("#live-products .product.sold-out[data-sku=lamp-2]") !== null',
            what="lamp-2 sold out",
        )

        # A countdown deal.
        await page.locator("#deal-sku").select_option("lamp-2")
        await page.locator("#deal-price").fill("59.00")
        await page.locator("#deal-stock").fill("5")
        await page.locator("#deal-duration").select_option("300")
        await page.locator("#deal-start").click()
        deal = (await log_entry(kim, "deal"))["deal"]
        assert (deal["action"], deal["deal"]["card"]["sku"], deal["deal"]["price"], deal["deal"]["stock"]) == (
            "start",
            "lamp-2",
            "59.00",
            5,
        )
        await console.wait_for('!document.getElementById("deal-running").hidden', what="the running deal")
        assert re.fullmatch(r"[45]:\d\d", await console.text("#deal-countdown"))

        # Chat both ways; a viewer's markup stays text.
        await kim.send({"type": "chat", "text": INJECTION})
        kim_line = await console.chat_line(INJECTION)
        assert await kim_line.locator(".name").text_content() == "Kim"
        assert await page.evaluate('document.querySelectorAll("#chat-log img").length') == 0
        await page.locator("#chat-input").fill("Welcome, everyone!")
        await page.locator("#chat-input").press("Enter")
        said = await log_entry(kim, "chat", lambda e: e["text"] == "Welcome, everyone!")
        assert said["participant"]["role"] == "host"

        # Pin Kim's line: it shows on top.
        await page.get_by_role("button", name="Pin this message from Kim", exact=True).click()
        pinned = await log_entry(kim, "moderation")
        assert pinned["moderation"]["action"] == "pin_message"
        await console.wait_for('!document.getElementById("pinned-message").hidden', what="the pinned message")
        assert await console.text("#pinned-message .text") == INJECTION

        # The troll: a deleted line disappears; muted, then banned (after a confirm) and removed.
        await troll.send({"type": "chat", "text": "spam spam"})
        spam = await console.chat_line("spam spam")
        await spam.get_by_role("button", name="Delete this message from Troll", exact=True).click()
        deleted = await log_entry(kim, "moderation", lambda e: e["moderation"]["action"] == "delete")
        await console.wait_for(
            f"document.querySelector('#chat-log [data-seq=\"{deleted['moderation']['seq']}\"]') === null",
            what="the deleted line to go",
        )
        await troll.send({"type": "chat", "text": "still here"})
        here = await console.chat_line("still here")
        await here.get_by_role("button", name="Mute Troll for 10 minutes", exact=True).click()
        muted = await log_entry(troll, "moderation", lambda e: e["moderation"]["action"] == "mute")
        assert muted["moderation"]["seconds"] == 600
        mark = troll.mark()
        await troll.send({"type": "chat", "text": "let me talk"})
        assert (await troll.expect("error", lambda m: m.get("ref") == "chat", after=mark))["code"] == "muted"
        await here.get_by_role("button", name="Ban Troll", exact=True).click()
        assert "Ban Troll?" in await console.text("#confirm .confirm-title")
        await console.confirm()
        await troll.expect("leave", lambda m: m["reason"] == "banned from the show")
        await console.wait_for('document.querySelector("#chat-log .tag.banned") !== null', what="the banned tag")

        # Slow mode reaches the server.
        await page.locator("#slow-mode").select_option("15")
        slow = await log_entry(kim, "moderation", lambda e: e["moderation"]["action"] == "slow_mode")
        assert slow["moderation"]["seconds"] == 15

        # Reactions: a running tally, and the likes count everyone sees.
        for reaction in ("like", "like", "fire"):
            await kim.send({"type": "react", "reaction": reaction})
        await console.wait_for(
            'document.querySelector("#reactions [data-reaction=like] .n")?.textContent === "2"',
            what="2 likes in the tally",
        )
        await console.wait_for('document.getElementById("stat-likes").textContent === "3"', what="3 likes")
        await console.screenshot("live-console-running.png")

        await page.locator("#deal-end").click()
        assert (await log_entry(kim, "deal", lambda e: e["deal"]["action"] == "end"))["deal"]["deal"]["card"][
            "sku"
        ] == "lamp-2"
        await console.wait_for('document.getElementById("deal-running").hidden', what="the deal to end")
        await page.get_by_role("button", name="Unpin Mug 1", exact=True).click()
        await log_entry(kim, "product", lambda e: e["product"]["action"] == "unpin")

        # A refusal from the server shows in the status line, and the console goes on.
        for n in range(8):
            await page.locator("#chat-input").fill(f"flood {n}")
            await page.locator("#chat-input").press("Enter")
        await console.wait_for(
            'document.getElementById("status").dataset.kind === "error"'
            ' && document.getElementById("status").textContent.includes("rate_limited")',
            what="the rate_limited error in the status line",
        )
        assert await page.locator("#status").is_visible()
        assert await page.evaluate("window.__pwned") is None

        await page.set_viewport_size(TABLET)
        await console.screenshot("live-console-tablet.png")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= TABLET["width"], f"the console scrolls sideways on a tablet ({width}px)"
        console.no_errors()
        await kim.close()
    finally:
        await console.close()


async def test_end_the_show_read_the_numbers_and_download_the_chat(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    console, _ = await open_console(browser, server, show)
    try:
        page = console.page
        await console.go_live_with_camera()
        ana = await join(server, await viewer_token(server, show, "Ana"))
        for text in ("hello from Ana", "=1+1 is two"):
            await ana.send({"type": "chat", "text": text})
            await console.chat_line(text)
        await page.locator("#chat-input").fill("thanks Ana")
        await page.locator("#chat-input").press("Enter")
        await console.chat_line("thanks Ana")
        await ana.send({"type": "click", "sku": "mug-1"})
        await console.wait_for('document.getElementById("stat-viewers").textContent === "1"', what="1 viewer")

        await page.locator("#end-show").click()
        assert await console.text("#confirm .confirm-title") == "End the show?"
        await console.confirm()
        await console.phase("ended")
        await ana.expect("leave", lambda m: m["reason"] == "the show has ended")
        assert entries(ana, "show")[-1]["show"] == "ended"

        async def metric(name: str) -> str:
            return await console.text(f'#analytics [data-metric="{name}"] dd')

        assert await metric("messages") == "3"
        assert await metric("peak_viewers") == "1"
        assert await metric("product_clicks") == "1"
        assert await metric("viewer_sessions") == "1"
        assert await page.locator('#clicks-by-sku tr[data-sku="mug-1"] td').text_content() == "1"
        async with server.api() as api:
            analytics = (await api.get(f"/v1/shops/acme/shows/{show['id']}/analytics")).json()
        assert analytics["messages"] == 3

        async with page.expect_download() as downloading:
            await page.locator("#download-csv").click()
        download = await downloading.value
        assert download.suggested_filename == f"{show['id']}-chat.csv"
        rows = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text())))
        assert [r["text"] for r in rows] == ["hello from Ana", "'=1+1 is two", "thanks Ana"]
        assert [r["name"] for r in rows[:2]] == ["Ana", "Ana"]
        viewer_url = f"{server.url}/watch.html?shop=acme&show={show['id']}"
        assert await page.locator("#viewer-link").get_attribute("href") == viewer_url
        await console.screenshot("live-console-ended.png")

        await page.reload()  # the numbers stay: an ended show opens on them
        await console.phase("ended")
        assert await metric("messages") == "3"
        console.no_errors()
        await ana.close()
    finally:
        await console.close()


async def test_obs_mode_shows_a_key_the_server_accepts_and_follows_the_stream(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    show = await make_show(server)
    console, _ = await open_console(browser, server, show)
    encoder = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        page = console.page
        await console.phase("setup")
        await console.pick("obs")
        assert await page.locator("#obs").is_visible()
        assert not await page.locator("#go-live").is_visible()
        whip_url = await page.locator("#whip-url").input_value()
        assert whip_url == f"{server.url}/v1/live/acme/{show['id']}/whip"
        key = page.locator("#stream-key")
        assert await key.get_attribute("type") == "password"  # hidden until asked
        await page.locator("#show-key").click()
        assert await key.get_attribute("type") == "text"
        old_key = await key.input_value()
        assert old_key.startswith("sk_")
        await page.locator("#copy-key").click()
        assert await page.evaluate("navigator.clipboard.readText()") == old_key

        await page.locator("#rotate-key").click()
        await console.confirm()
        await console.wait_for(
            "(old) => document.getElementById('stream-key').value !== old", old_key, what="a new stream key"
        )
        new_key = await key.input_value()
        await console.screenshot("live-console-obs.png")

        async with httpx.AsyncClient(timeout=30) as http:
            for bad in (old_key, "sk_" + "A" * 32):
                refused = await http.post(
                    whip_url,
                    content="v=0\r\n",
                    headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {bad}"},
                )
                assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
            # An encoder with the key from the page: accepted, and the show goes live.
            for track in av_tracks():
                encoder.addTransceiver(track, direction="sendonly")
            await encoder.setLocalDescription(await encoder.createOffer())
            published = await http.post(
                whip_url,
                content=encoder.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {new_key}"},
            )
            assert published.status_code == 201, published.text
            await encoder.setRemoteDescription(RTCSessionDescription(sdp=published.text, type="answer"))

        # The console notices (it polls), joins without publishing, and previews the stream.
        await console.phase("live")
        await console.connected()
        await console.wait_for(video_playing(selector="#preview"), what="the OBS stream in the preview")
        assert await page.evaluate('document.getElementById("preview").videoWidth') == 320
        assert await page.evaluate(SENT_VIDEO_LABEL) is None  # the console sends nothing
        kim = await join(server, await viewer_token(server, show, "Kim"))
        await kim.send({"type": "chat", "text": "is this OBS?"})
        await console.chat_line("is this OBS?")
        await page.get_by_role("button", name="Pin Mug 1", exact=True).click()
        await log_entry(kim, "product", lambda e: e["product"]["action"] == "pin")
        await console.screenshot("live-console-obs-live.png")
        console.no_errors()
        await kim.close()
    finally:
        await encoder.close()
        await console.close()


async def test_a_refused_console_link_shows_a_typed_error(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    console = LiveConsole(page=await context.new_page(), name="console")
    try:
        page = console.page
        await page.goto(server.url + "/live.html#token=not-a-token")
        await console.phase("login")
        await console.wait_for(
            'document.getElementById("login-error").dataset.code === "invalid_token"', what="a typed error"
        )
        assert await page.locator("#login-error").is_visible()
        assert not await page.locator("#workspace").is_visible()
        assert await page.evaluate('sessionStorage.getItem("vitrine.live.token")') is None
        assert "not-a-token" not in page.url
    finally:
        await console.close()


async def test_the_consoles_csp_blocks_injected_handlers(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    await assert_csp_blocks_inline_handlers(browser, server.url + "/live.html", ready="body[data-phase='login']")
