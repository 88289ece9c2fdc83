"""The agent console (web/agent.html) in headless Debian Chromium, driven by Playwright.

Console only: sign-in, presence, the queue, the ring, contact requests and a dropped desk
socket. Shoppers are played from Python over the real shopper socket (/v1/consult/shopper).
The full shopper + agent call lives in the end-to-end test. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websockets

from tests.browser_support import (
    DESKTOP,
    INJECTION,
    STATE_TIMEOUT_S,
    WatchedPage,
    assert_csp_blocks_inline_handlers,
    playwright_api,
    video_playing,
)
from tests.desk_helpers import ALWAYS_OPEN
from tests.servers import RunningServer
from vitrine.core.models import Role
from vitrine.core.shops import WEEKDAYS

pytestmark = pytest.mark.browser

TABLET = {"width": 768, "height": 1024}
AGENT_ZONE = "Europe/Paris"  # the browser's zone: the console shows callback slots in it

# A 1x1 PNG served for the shop's product images (the test never leaves 127.0.0.1).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2b5f1"
    "a70000000049454e44ae426082"
)


# -- the shop, through the REST API -------------------------------------------------------------


async def make_shop(server: RunningServer, shop: str, *, hours: list[dict[str, str]]) -> None:
    """A shop on https://{shop}.example with agent "ann" and two products."""
    async with server.api() as api:
        (
            await api.post(
                "/v1/shops",
                json={
                    "id": shop,
                    "name": f"{shop.title()} Store",
                    "allowed_origins": [f"https://{shop}.example"],
                    "opening_hours": hours,
                    "languages": ["en", "fr"],
                },
            )
        ).raise_for_status()
        (
            await api.put(f"/v1/shops/{shop}/agents/ann", json={"display_name": "Ann Agent", "languages": ["en", "fr"]})
        ).raise_for_status()
        for sku, title, price in (("mug-1", "Stoneware mug", "12.50"), ("lamp-2", "Desk lamp", "89.00")):
            (
                await api.put(
                    f"/v1/shops/{shop}/products/{sku}",
                    json={
                        "title": title,
                        "price": price,
                        "currency": "EUR",
                        "url": f"https://{shop}.example/p/{sku}",
                        "image_url": f"https://{shop}.example/i/{sku}.png",
                    },
                )
            ).raise_for_status()


async def agent_token(server: RunningServer, shop: str, agent: str = "ann") -> str:
    async with server.api() as api:
        response = await api.post(f"/v1/shops/{shop}/agents/{agent}/token")
        response.raise_for_status()
        body = response.json()
    assert body["console_url"].endswith("/agent.html#token=" + body["token"]), "the console link carries the token"
    return body["token"]


# -- a shopper, over the real desk socket -----------------------------------------------------------


@dataclass
class Shopper:
    ws: Any
    received: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def open(cls, server: RunningServer, shop: str) -> Shopper:
        url = server.url.replace("http://", "ws://") + "/v1/consult/shopper"
        ws = await websockets.connect(
            url, additional_headers={"Origin": f"https://{shop}.example"}, open_timeout=STATE_TIMEOUT_S
        )
        return cls(ws=ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, *kinds: str) -> dict[str, Any]:
        """The next message of one of ``kinds`` (others are kept); an ``error`` fails the test."""
        async with asyncio.timeout(STATE_TIMEOUT_S):
            while True:
                message = json.loads(await self.ws.recv())
                self.received.append(message)
                if message["type"] in kinds:
                    return message
                assert message["type"] != "error", message

    async def close(self) -> None:
        await self.ws.close()


# -- the console in a browser ---------------------------------------------------------------------------


class Console(WatchedPage):
    """web/agent.html in a tab."""

    async def text(self, selector: str) -> str:
        return (await self.page.locator(selector).text_content()) or ""

    async def status_is(self, status: str) -> None:
        await self.wait_for(
            '(s) => document.getElementById("status").textContent === s', status, what=f"#status {status!r}"
        )

    async def sign_in(self, token: str) -> None:
        await self.page.locator("#token").fill(token)
        await self.page.locator("#login").click()
        await self.wait_for('!document.getElementById("console").hidden', what="the console after sign-in")

    def no_errors(self) -> None:
        errors = [line for line in self.log if line.startswith(("error", "pageerror"))]
        assert not errors, self.diagnostics()


async def open_console(
    browser: playwright_api.Browser,
    server: RunningServer,
    *,
    fragment: str = "",
    viewport: dict[str, int] = DESKTOP,
    route_desk: Any = None,
) -> Console:
    # bypass_csp: the console's CSP forbids eval, and Playwright evaluates the tests' string predicates.
    context = await browser.new_context(
        viewport=viewport, locale="en-US", timezone_id=AGENT_ZONE, permissions=["camera", "microphone"], bypass_csp=True
    )
    # Product images come from the shop's (made-up) host: serve them locally.
    await context.route(
        re.compile(r"^https://[a-z0-9-]+\.example/"),
        lambda route: route.fulfill(status=200, content_type="image/png", body=PNG),
    )
    console = Console(page=await context.new_page())
    if route_desk is not None:
        await console.page.route_web_socket(re.compile(r"/v1/consult/agent$"), route_desk)
    await console.page.goto(server.url + "/agent.html" + fragment)
    return console


# -- tests ---------------------------------------------------------------------------------------------------


async def test_refused_token_shows_a_typed_error_and_no_queue(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    await make_shop(server, "refused", hours=ALWAYS_OPEN)
    console = await open_console(browser, server)
    try:
        page = console.page
        for bad in (
            "not-a-token",
            # A valid room join token is not a desk token (another audience).
            server.token("room-1", "ann", Role.AGENT),
        ):
            await page.locator("#token").fill(bad)
            await page.locator("#login").click()
            await console.wait_for(
                'document.getElementById("login-error").dataset.code === "invalid_token"', what="a typed login error"
            )
            assert "(invalid_token)" in await console.text("#login-error")
            assert await page.locator("#login-error").is_visible()
            assert not await page.locator("#console").is_visible()
            assert not await page.locator("#queue").is_visible()
            assert await page.evaluate('sessionStorage.getItem("vitrine.agent.token")') is None
            # The next attempt starts clean.
            await page.evaluate('document.getElementById("login-error").dataset.code = ""')
        await console.screenshot("agent-console-refused.png")
        assert not any(bad in line for line in console.log), "the token must never be logged"
    finally:
        await console.close()


async def test_sign_in_shows_agent_catalog_and_availability(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    await make_shop(server, "atelier", hours=ALWAYS_OPEN)
    token = await agent_token(server, "atelier")
    console = await open_console(browser, server, fragment="#token=" + token)
    try:
        page = console.page
        await console.wait_for('!document.getElementById("console").hidden', what="the console")
        # The fragment signed in and was dropped from the address bar; the token is in sessionStorage only.
        assert "token" not in page.url
        assert await page.evaluate('sessionStorage.getItem("vitrine.agent.token")') == token
        assert await page.evaluate("localStorage.length") == 0

        assert await console.text("#agent-name") == "Ann Agent"
        assert await console.text("#shop-name") == "Atelier Store"
        assert await console.text("#shop-open") == "open"
        await console.status_is("away")  # a console logs in away
        assert not await page.locator("#ring").is_visible()

        # The catalog: one .product per card, price in the agent's locale, show disabled outside a call.
        await console.wait_for('document.querySelectorAll("#catalog .product").length === 2', what="2 products")
        mug = page.locator('#catalog .product[data-sku="mug-1"]')
        assert "€12.50" in (await mug.locator(".price").text_content() or "")
        assert await mug.locator(".title").get_attribute("href") == "https://atelier.example/p/mug-1"
        assert await mug.locator("img").get_attribute("src") == "https://atelier.example/i/mug-1.png"
        assert await page.locator('#catalog button.show[data-sku="mug-1"]').is_disabled()

        # The team list shows this agent.
        await console.wait_for('document.querySelector("#agents .agent[data-agent=ann]") !== null', what="#agents")

        await page.locator("#go-available").click()
        await console.status_is("available")
        assert await page.locator("#go-available").get_attribute("aria-pressed") == "true"
        await console.screenshot("agent-console-available.png")

        # Keyboard: Alt+2 goes away, Alt+1 available again.
        await page.keyboard.press("Alt+2")
        await console.status_is("away")
        await page.keyboard.press("Alt+1")
        await console.status_is("available")

        # A reload resumes the session from sessionStorage, without the token in the URL.
        await page.reload()
        await console.wait_for('!document.getElementById("console").hidden', what="the console after a reload")
        assert await console.text("#agent-name") == "Ann Agent"
        await console.wait_for(
            '["away", "available"].includes(document.getElementById("status").textContent)',
            what="a status after the reload",
        )

        for name, viewport in (("tablet-landscape", {"width": 1024, "height": 768}), ("tablet", TABLET)):
            await page.set_viewport_size(viewport)
            await console.screenshot(f"agent-console-{name}.png")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the console scrolls sideways at {viewport} ({width}px)"
        console.no_errors()
        assert not any(token in line for line in console.log), "the token must never be logged"
    finally:
        await console.close()


async def test_shopper_text_renders_as_text(server: RunningServer, browser: playwright_api.Browser) -> None:
    await make_shop(server, "bazaar", hours=ALWAYS_OPEN)
    console = await open_console(browser, server)
    shopper = None
    try:
        page = console.page
        await console.sign_in(await agent_token(server, "bazaar"))
        await console.status_is("away")  # away: the shopper waits in the queue instead of ringing

        shopper = await Shopper.open(server, "bazaar")
        await shopper.send(
            {
                "type": "enter",
                "shop": "bazaar",
                "context": {
                    "name": INJECTION,
                    "language": "fr",
                    "timezone": "Asia/Tokyo",
                    "sku": "mug-1",
                    "page_title": "<b>Mugs</b> & <i>cups</i>",
                    "page_url": "javascript:alert(1)",
                },
            }
        )
        ticket = (await shopper.expect("ticket"))["ticket"]

        await console.wait_for('document.querySelectorAll("#queue .entry").length === 1', what="one queue entry")
        entry = page.locator(f'#queue .entry[data-ticket="{ticket}"]')
        assert await entry.locator(".name").text_content() == INJECTION
        assert await entry.locator(".page").text_content() == "<b>Mugs</b> & <i>cups</i>"
        assert await entry.locator(".lang").text_content() == "FR"
        assert await entry.locator(".sku").text_content() == "mug-1"
        # The shopper's wall clock, in their zone (GMT+9 for Tokyo).
        assert "GMT+9" in (await entry.locator(".local-time").text_content() or "")
        # The waited time ticks.
        first = await entry.locator(".waited").text_content()
        await console.wait_for(
            '(t) => document.querySelector("#queue .entry .waited").textContent !== t',
            first,
            what="the waited time to tick",
        )
        # Nothing was parsed as HTML, and a javascript: page URL is not a link.
        parsed = 'document.querySelectorAll("img[src=x], #queue img, #queue b, #queue i").length'
        assert await page.evaluate(parsed) == 0
        assert await page.locator("#queue a").count() == 0
        assert await page.evaluate("window.__pwned") is None

        # Going available rings this agent: the ring shows the same context, as text.
        await page.locator("#go-available").click()
        await console.wait_for('!document.getElementById("ring").hidden', what="#ring")
        await console.status_is("busy")  # while ringing, the desk counts this agent busy
        assert await console.text("#ring .ring-name") == INJECTION
        assert re.fullmatch(r"\d+ s", await console.text("#ring .ring-countdown"))
        assert await page.evaluate('document.querySelectorAll("img[src=x], #ring img").length') == 0
        await console.screenshot("agent-console-ring.png")
        await page.locator("#ring .decline").click()
        await console.wait_for('document.getElementById("ring").hidden', what="#ring to hide after decline")
        assert await page.evaluate("window.__pwned") is None
        console.no_errors()
    finally:
        if shopper is not None:
            await shopper.close()
        await console.close()


async def test_the_consoles_csp_blocks_injected_handlers(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    await assert_csp_blocks_inline_handlers(browser, server.url + "/agent.html")


def _closed_today_open_in_two_days() -> list[dict[str, str]]:
    """Closed now, open all day two days from now (UTC): callback slots exist, entering says closed."""
    day = WEEKDAYS[(datetime.now(UTC) + timedelta(days=2)).weekday()].value
    return [{"day": day, "opens": "00:00", "closes": "24:00"}]


async def test_requests_appear_and_resolve(server: RunningServer, browser: playwright_api.Browser) -> None:
    await make_shop(server, "closedshop", hours=_closed_today_open_in_two_days())
    console = await open_console(browser, server)
    shopper = None
    try:
        page = console.page
        await console.sign_in(await agent_token(server, "closedshop"))
        assert await console.text("#shop-open") == "closed"
        assert (await console.text("#shop-next")).startswith("opens ")

        shopper = await Shopper.open(server, "closedshop")
        await shopper.send(
            {
                "type": "enter",
                "shop": "closedshop",
                "context": {"name": "Zoë", "language": "en", "timezone": "America/New_York", "page_title": "Lamps"},
            }
        )
        closed = await shopper.expect("closed")
        assert closed["slots_utc_ms"], closed
        await shopper.send(
            {
                "type": "leave_message",
                "name": "Zoë <script>",
                "contact": "zoe@example.com",
                "text": "Do you ship to <b>Canada</b>?",
            }
        )
        message_id = (await shopper.expect("request_saved"))["request"]["id"]
        slot_ms = closed["slots_utc_ms"][0]
        await shopper.send(
            {
                "type": "book_callback",
                "name": "Zoë",
                "contact": "+1 555 0100",
                "slot_utc_ms": slot_ms,
                "text": "About the desk lamp",
            }
        )
        callback_id = (await shopper.expect("request_saved"))["request"]["id"]

        await console.wait_for('document.querySelectorAll("#requests .request").length === 2', what="2 requests")
        message = page.locator(f'#requests .request[data-id="{message_id}"]')
        assert await message.locator(".name").text_content() == "Zoë <script>"
        assert await message.locator(".contact").text_content() == "zoe@example.com"
        assert await message.locator(".text").text_content() == "Do you ship to <b>Canada</b>?"
        assert await page.locator("#requests b, #requests script").count() == 0

        # The callback slot, in the agent's zone and in the shopper's.
        callback = page.locator(f'#requests .request[data-id="{callback_id}"]')
        slot = datetime.fromtimestamp(slot_ms / 1000, UTC)
        local = await callback.locator(".slot-local").text_content() or ""
        theirs = await callback.locator(".slot-shopper").text_content() or ""
        assert slot.astimezone(ZoneInfo(AGENT_ZONE)).strftime("%I:%M") in local, local
        assert slot.astimezone(ZoneInfo("America/New_York")).strftime("%I:%M") in theirs, theirs
        assert await callback.locator(".text").text_content() == "About the desk lamp"
        assert await console.text("#requests-count") == "2"
        await console.screenshot("agent-console-requests.png")

        await message.locator("button.resolve").click()
        await console.wait_for(
            f"document.querySelector('#requests .request[data-id=\"{message_id}\"]') === null",
            what="the resolved message to go",
        )
        await callback.locator("button.resolve").click()
        await console.wait_for('document.querySelectorAll("#requests .request").length === 0', what="no requests")
        assert await console.text("#requests-count") == "0"
        console.no_errors()
    finally:
        if shopper is not None:
            await shopper.close()
        await console.close()


async def test_dropped_desk_socket_reconnects(server: RunningServer, browser: playwright_api.Browser) -> None:
    """The desk socket goes through Playwright's proxy, which the test closes under the page."""
    await make_shop(server, "resilient", hours=ALWAYS_OPEN)
    routes: list[Any] = []

    def route_desk(ws: Any) -> None:
        ws.connect_to_server()
        routes.append(ws)

    console = await open_console(browser, server, route_desk=route_desk)
    try:
        page = console.page
        await console.sign_in(await agent_token(server, "resilient"))
        await page.locator("#go-available").click()
        await console.status_is("available")
        await page.evaluate("""() => {
          const banner = document.getElementById("reconnecting");
          window.__bannerSeen = false;
          new MutationObserver(() => { if (!banner.hidden) window.__bannerSeen = true; })
            .observe(banner, { attributes: true });
        }""")

        assert len(routes) == 1
        await routes[0].close(code=4001, reason="test drop")
        await console.wait_for("window.__bannerSeen === true", what="the reconnecting banner")
        await console.wait_for('document.getElementById("reconnecting").hidden', what="the banner to go")
        assert len(routes) >= 2, "the console opened a new desk socket"
        # Logged in again on the new socket, and available again as before the drop: the desk counts it.
        await console.status_is("available")
        assert await console.text("#agent-name") == "Ann Agent"
        async with server.api() as api:
            async with asyncio.timeout(STATE_TIMEOUT_S):
                while (await api.get("/v1/consult/resilient/status")).json()["agents_available"] != 1:
                    await asyncio.sleep(0.1)
        console.no_errors()
    finally:
        await console.close()


async def wait_video_shape(remote: Any, *, wide: bool) -> None:
    """Decode the remote video until a frame is 16:9 (``wide``) or 4:3."""
    async with asyncio.timeout(STATE_TIMEOUT_S):
        while True:
            frame = await remote.track.recv()
            if (frame.width / frame.height > 1.6) == wide:
                return


async def test_call_panel_wrap_up_and_history(server: RunningServer, browser: playwright_api.Browser) -> None:
    """The console's side of a call; the shopper is Python (desk socket + an aiortc room client)."""
    from loadtest.client import VitrineClient
    from tests.media_helpers import av_tracks, remote_tracks

    await make_shop(server, "callshop", hours=ALWAYS_OPEN)
    console = await open_console(browser, server)
    shopper = media = None
    try:
        page = console.page
        await console.sign_in(await agent_token(server, "callshop"))
        await page.locator("#go-available").click()
        await console.status_is("available")

        shopper = await Shopper.open(server, "callshop")
        await shopper.send(
            {
                "type": "enter",
                "shop": "callshop",
                "context": {
                    "name": "Sam",
                    "language": "en",
                    "timezone": "Europe/London",
                    "sku": "mug-1",
                    "page_title": "Mugs",
                    "page_url": "https://callshop.example/p/mug-1",
                },
            }
        )
        ticket = (await shopper.expect("ticket"))["ticket"]
        await console.wait_for('!document.getElementById("ring").hidden', what="#ring")
        assert await page.locator("#ring .page").get_attribute("href") == "https://callshop.example/p/mug-1"
        await page.keyboard.press("a")  # accept from the keyboard

        setup = (await shopper.expect("call_started"))["setup"]
        assert setup["call"] == ticket and setup["peer_name"] == "Ann Agent"
        media = VitrineClient(server.url, setup["token"], tracks=av_tracks())
        await media.connect()
        await console.wait_for('!document.getElementById("call").hidden', what="#call")
        assert not await page.locator("#ring").is_visible()
        await console.status_is("busy")
        assert await console.text("#call .peer") == "Sam"
        await console.wait_for(
            video_playing(selector="#call video.remote"), what="the shopper's video playing in video.remote"
        )
        agent_tracks = await remote_tracks(media, 2)  # the agent's camera and microphone
        assert set(agent_tracks) == {"audio", "video"}

        # Chat both ways; Enter sends.
        await page.locator("#chat-input").fill("Hello <b>Sam</b>")
        await page.locator("#chat-input").press("Enter")
        line = (await shopper.expect("chat"))["line"]
        assert (line["sender"], line["text"]) == ("agent", "Hello <b>Sam</b>")
        await console.wait_for(
            'document.querySelectorAll("#chat-log .line:not(.pending)").length === 1',
            what="the agent's line, confirmed",
        )
        await shopper.send({"type": "chat", "text": INJECTION})
        await console.wait_for('document.querySelectorAll("#chat-log .line").length === 2', what="the shopper's line")
        assert await page.locator("#chat-log .line.theirs .text").text_content() == INJECTION
        assert await page.evaluate('document.querySelectorAll("#chat-log img, #chat-log b").length') == 0

        # Show a product; the card reaches the shopper and the catalog marks it.
        await page.locator('#catalog button.show[data-sku="lamp-2"]').click()
        card = (await shopper.expect("product"))["card"]
        assert card["sku"] == "lamp-2"
        await console.wait_for(
            'document.querySelector("#catalog .product.shown[data-sku=\\"lamp-2\\"]") !== null',
            what="lamp-2 marked as shown",
        )

        # Private notes are saved after a pause in typing.
        await page.locator("#notes").fill("Wants it in blue")
        await console.wait_for('document.getElementById("notes-state").textContent === "saved"', what="notes saved")

        # Screen sharing without getDisplayMedia: a clear message, no exception.
        await page.evaluate(
            "() => { window.__gdm = MediaDevices.prototype.getDisplayMedia;"
            " MediaDevices.prototype.getDisplayMedia = undefined; }"
        )
        await page.locator("#share-screen").click()
        await console.wait_for('!document.getElementById("call-message").hidden', what="the no-sharing message")
        assert "Screen sharing is not available" in await console.text("#call-message")
        assert await page.locator("#share-screen").get_attribute("aria-pressed") == "false"
        await page.evaluate("() => { MediaDevices.prototype.getDisplayMedia = window.__gdm; }")

        # With it (headless Chromium shares a fake 16:9 screen): the shopper's video turns from the 4:3
        # camera to the screen, without renegotiation, and back when the share stops.
        await wait_video_shape(agent_tracks["video"], wide=False)
        await page.locator("#share-screen").click()
        await console.wait_for(
            'document.getElementById("share-screen").getAttribute("aria-pressed") === "true"', what="sharing"
        )
        await wait_video_shape(agent_tracks["video"], wide=True)
        await page.locator("#share-screen").click()
        await console.wait_for(
            'document.getElementById("share-screen").getAttribute("aria-pressed") === "false"',
            what="back to the camera",
        )
        await wait_video_shape(agent_tracks["video"], wide=False)
        await console.screenshot("agent-console-call.png")

        await page.locator("#end-call").click()
        ended = await shopper.expect("call_ended")
        assert ended["ended_by"] == "agent"
        await console.wait_for('!document.getElementById("wrapup").hidden', what="#wrapup")
        assert not await page.locator("#call").is_visible()
        await console.status_is("wrap_up")
        assert await page.locator("#wrapup-notes").input_value() == "Wants it in blue"
        await shopper.send({"type": "rate", "stars": 4, "comment": "Great <b>help</b>"})
        await shopper.expect("rated")

        await page.locator("#wrapup-notes").fill("Wants it in blue; send the catalog")
        await page.locator("#wrapup-submit").click()
        await console.status_is("available")
        assert not await page.locator("#wrapup").is_visible()

        item = page.locator(f'#history .call[data-id="{ticket}"]')
        await console.wait_for(
            f"(() => {{ const c = document.querySelector('#history .call[data-id=\"{ticket}\"]');"
            ' return c !== null && c.querySelector(".rating").textContent === "★★★★☆"; })()',
            what="the rated call in #history",
        )
        assert await item.locator(".outcome").text_content() == "answered"
        assert await item.locator(".name").text_content() == "Sam"
        assert not await item.locator(".transcript").is_visible()
        await item.locator("summary").click()
        assert await item.locator(".transcript .line").count() == 2
        assert await item.locator(".comment").text_content() == "Great <b>help</b>"
        assert "Desk lamp" in (await item.locator(".products").text_content() or "")
        await console.screenshot("agent-console-history.png")
        console.no_errors()
    finally:
        if media is not None:
            await media.close()
        if shopper is not None:
            await shopper.close()
        await console.close()
