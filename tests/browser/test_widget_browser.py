"""The storefront widget (web/widget.js) in headless Debian Chromium, embedded on another origin.

The shop's product page is served by browser_support.ShopPages on its own port, so the widget runs
as on a real storefront: a classic <script> from the Vitrine origin, an open shadow root, CORS for
its modules and for the status endpoint, and the shop's ``allowed_origins`` for its desk socket.
The page's CSS is deliberately hostile; none of it may reach the widget.

Widget only: the launcher, languages, leave-a-message and callbacks, the device check, the queue,
the phone layout. The full shopper + agent call is the end-to-end test's. Screenshots land in
test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser_support import (
    DESKTOP,
    INJECTION,
    STATE_TIMEOUT_MS,
    STATE_TIMEOUT_S,
    ShopPages,
    WatchedPage,
    playwright_api,
    record_sent_frames,
)
from tests.desk_helpers import ALWAYS_OPEN, login_agent
from tests.servers import RunningServer
from vitrine.core.shops import WEEKDAYS

expect = playwright_api.expect

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 360, "height": 640}  # smaller than browser_support.PHONE: the panel must still fit

# The widget's shadow root, for page.evaluate / wait_for_function (locators pierce it on their own).
ROOT = 'document.querySelector("vitrine-consult").shadowRoot'

# -- the shop's page, on its own origin ------------------------------------------------------------

SHOP_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <title>{title}</title>
  <style>
    /* A storefront's CSS at its most aggressive: none of it may reach into the widget. */
    * {{ font-family: "Comic Sans MS", cursive !important; color: rgb(255, 0, 255) !important;
         letter-spacing: 4px !important; line-height: 3 !important; }}
    button {{ display: none !important; }}
    div, section, p, span, video, input, textarea, h2, h3 {{
      background: rgb(255, 0, 0) !important; border: 9px solid lime !important; padding: 40px !important; }}
    [class^="vt-"], .vt-launcher, .vt-panel, vitrine-consult button {{ display: none !important; }}
  </style>
</head>
<body>
  <main><h1>Stoneware mug</h1><p>Hand thrown, speckled glaze.</p><button id="buy" type="button">Buy</button></main>
  {scripts}
  <script>
    window.__carts = [];
    document.addEventListener("vitrine:add-to-cart", (event) => window.__carts.push(event.detail));
  </script>
</body>
</html>
"""


def product_page(vitrine: str, path: str, q: dict[str, str]) -> str | None:
    """``/product?shop=..&product=..&lang=..&title=..&copies=..``: the embed, pasted ``copies`` times."""
    if path != "/product":
        return None
    attrs = f'data-shop="{escape(q["shop"])}" data-product="{escape(q.get("product", "mug-1"))}"'
    if q.get("lang"):
        attrs += f' data-lang="{escape(q["lang"])}"'
    tag = f'<script src="{vitrine}/widget.js" {attrs} async></script>'
    return SHOP_PAGE.format(
        title=escape(q.get("title", "Stoneware mug · Acme")), scripts="\n  ".join([tag] * int(q.get("copies", "1")))
    )


def product_url(pages: ShopPages, shop: str, **params: str) -> str:
    return pages.url("/product", shop=shop, **params)


@pytest.fixture
def shop_pages(server: RunningServer) -> Iterator[ShopPages]:
    with ShopPages(partial(product_page, server.url)) as pages:
        yield pages


async def make_shop(
    server: RunningServer,
    shop: str,
    origin: str,
    *,
    hours: list[dict[str, str]],
    timezone: str = "UTC",
    name: str | None = None,
) -> None:
    """A shop embedded on ``origin`` with one agent, "ann", through the REST API."""
    async with server.api() as api:
        (
            await api.post(
                "/v1/shops",
                json={
                    "id": shop,
                    "name": name or f"{shop.title()} Store",
                    "allowed_origins": [origin],
                    "link_hosts": [f"{shop}.example"],
                    "timezone": timezone,
                    "opening_hours": hours,
                    "languages": ["en", "fr", "de", "zh"],
                },
            )
        ).raise_for_status()
        (
            await api.put(f"/v1/shops/{shop}/agents/ann", json={"display_name": "Ann", "languages": ["en", "fr"]})
        ).raise_for_status()


# -- a browser tab on the shop's page ----------------------------------------------------------------


@dataclass
class Tab(WatchedPage):
    errors: list[str] = field(default_factory=list)  # uncaught exceptions
    desk_sent: list[dict[str, Any]] = field(default_factory=list)  # shopper socket frames, tokens removed

    def page_error(self, exc: playwright_api.Error) -> None:
        self.errors.append(str(exc))

    def diagnostics(self) -> str:
        return super().diagnostics() + "\nsent: " + json.dumps(self.desk_sent[-10:])

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.desk_sent if m.get("type") == kind]

    async def wait_sent(self, kind: str) -> list[dict[str, Any]]:
        """The shopper socket frames of ``kind`` once there is at least one."""
        deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_S
        while not self.sent(kind):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the widget sent no {kind!r}\n{self.diagnostics()}")
            await asyncio.sleep(0.05)
        return self.sent(kind)

    async def screenshot(self, filename: str, **options: Any) -> None:
        """The viewport, animations stopped: the widget is an overlay fixed to it."""
        await super().screenshot(filename, **({"full_page": False, "animations": "disabled"} | options))


async def open_shop_page(
    browser: playwright_api.Browser,
    url: str,
    *,
    viewport: dict[str, int] = DESKTOP,
    locale: str = "en-US",
    timezone_id: str | None = None,
    deny_media: bool = False,
    **context_options: Any,
) -> Tab:
    context = await browser.new_context(
        viewport=viewport,
        locale=locale,
        timezone_id=timezone_id,
        permissions=[] if deny_media else ["camera", "microphone"],
        **context_options,
    )
    if deny_media:
        # As a browser whose user said "Block": every getUserMedia is refused.
        await context.add_init_script("""
          navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
        """)
    tab = Tab(page=await context.new_page())
    record_sent_frames(tab.page, tab.desk_sent, "/v1/consult/shopper")
    await tab.page.goto(url)
    return tab


async def launcher_status(tab: Tab) -> str:
    status = tab.page.locator(".vt-launcher-status")
    await expect(status).not_to_have_text("", timeout=STATE_TIMEOUT_MS)
    return (await status.text_content() or "").strip()


# -- tests ------------------------------------------------------------------------------------------


async def test_launcher_lives_in_a_shadow_root_the_shop_css_cannot_reach(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=ALWAYS_OPEN, name=f"Acme {INJECTION}")
    console = await login_agent(server, "acme", "ann")
    tab = await open_shop_page(browser, product_url(shop_pages, "acme", copies="2"))  # the one line, pasted twice
    try:
        launcher = tab.page.locator(".vt-launcher")
        await expect(launcher).to_be_visible(timeout=STATE_TIMEOUT_MS)
        # Open, an agent free: the estimate is about one ring.
        assert await launcher_status(tab) == "Less than a minute wait"
        assert (await tab.page.locator(".vt-launcher-label").text_content()) == "Video consult"

        # One widget, in an open shadow root; nothing of it in the page's own DOM or stylesheets.
        shape = await tab.page.evaluate("""() => ({
          hosts: document.querySelectorAll("vitrine-consult").length,
          open: document.querySelector("vitrine-consult").shadowRoot !== null,
          inLightDom: document.querySelectorAll(".vt-launcher, .vt-panel, link[rel=stylesheet]").length,
          pageStyles: document.querySelectorAll("style").length,
          api: typeof window.VitrineConsult?.open,
        })""")
        assert shape == {"hosts": 1, "open": True, "inLightDom": 0, "pageStyles": 1, "api": "function"}, shape

        # The page's CSS is live (its own button is gone) and changed nothing of ours.
        assert await tab.page.locator("#buy").is_hidden()
        style = await tab.page.evaluate(f"""() => {{
          const b = {ROOT}.querySelector(".vt-launcher");
          const s = getComputedStyle(b);
          const r = b.getBoundingClientRect();
          return {{ display: s.display, font: s.fontFamily, color: s.color, spacing: s.letterSpacing,
                   right: innerWidth - r.right, bottom: innerHeight - r.bottom, height: r.height }};
        }}""")
        assert style["display"] != "none", style
        assert "Comic" not in style["font"] and style["color"] != "rgb(255, 0, 255)", style
        assert style["spacing"] == "normal", style
        assert 8 <= style["right"] <= 40 and 8 <= style["bottom"] <= 40, style  # bottom-right corner
        assert style["height"] >= 44, style

        # A shop's own button opens the panel; the shop's name is text, never markup.
        await tab.page.evaluate("window.VitrineConsult.open()")
        await expect(tab.page.locator(".vt-panel")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(tab.page.locator(".vt-view-intro")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        assert INJECTION in (await tab.page.locator(".vt-title").text_content() or "")
        assert await tab.page.evaluate("window.__pwned === undefined")
        assert await tab.page.locator(".vt-launcher").get_attribute("aria-expanded") == "true"
        await tab.screenshot("widget-launcher-open.png")

        await tab.page.locator(".vt-close").click()
        await expect(tab.page.locator(".vt-panel")).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        assert not tab.errors, tab.errors
    finally:
        await tab.close()
        await console.close()


@pytest.mark.parametrize(
    ("locale", "lang", "label", "chosen"),
    [
        ("fr-FR", None, "Conseil en vidéo", "fr"),
        ("zh-CN", None, "视频咨询", "zh"),
        ("es-MX", None, "Asesoría por vídeo", "es"),
        ("en-US", "de", "Videoberatung", "de"),  # data-lang overrides the browser
        ("pt-BR", None, "Video consult", "en"),  # not translated: English
    ],
)
async def test_labels_follow_the_browser_language(
    server: RunningServer,
    browser: playwright_api.Browser,
    shop_pages: ShopPages,
    locale: str,
    lang: str | None,
    label: str,
    chosen: str,
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=[])  # never open
    params = {"lang": lang} if lang else {}
    tab = await open_shop_page(browser, product_url(shop_pages, "acme", **params), locale=locale)
    try:
        await expect(tab.page.locator(".vt-launcher-label")).to_have_text(label, timeout=STATE_TIMEOUT_MS)
        assert await tab.page.locator(".vt-root").get_attribute("lang") == chosen
        closed = {"fr": "Fermé", "zh": "休息中", "es": "Cerrado", "de": "Geschlossen", "en": "Closed"}[chosen]
        assert (await launcher_status(tab)).startswith(closed)

        # The chosen language goes to the desk with the shopper's context.
        await tab.page.locator(".vt-launcher").click()
        await expect(tab.page.locator(".vt-view-unavailable")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        [enter] = await tab.wait_sent("enter")
        assert enter["context"]["language"] == chosen, tab.diagnostics()
        assert not tab.errors, tab.errors
    finally:
        await tab.close()


async def test_every_language_has_every_label(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=[])
    tab = await open_shop_page(browser, product_url(shop_pages, "acme"))
    try:
        # Imported across origins, as the widget itself does.
        report = await tab.page.evaluate(
            """async (base) => {
          const { MESSAGES } = await import(base + "/widget/i18n.js");
          const keys = Object.keys(MESSAGES.en);
          const out = {};
          for (const [lang, dict] of Object.entries(MESSAGES)) {
            out[lang] = {
              missing: keys.filter((k) => !(k in dict)),
              extra: Object.keys(dict).filter((k) => !(k in MESSAGES.en)),
              empty: Object.entries(dict).filter(([, v]) => !v || (typeof v === "object" && !v.other)).map(([k]) => k),
            };
          }
          return out;
        }""",
            server.url,
        )
        assert set(report) == {"en", "zh", "es", "fr", "de"}, report
        for lang, problems in report.items():
            assert problems == {"missing": [], "extra": [], "empty": []}, (lang, problems)
    finally:
        await tab.close()


async def test_closed_shop_takes_a_message_that_the_rest_api_lists(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=[])  # no opening hours: never open
    url = product_url(shop_pages, "acme", product="mug-1", title="Stoneware mug · Acme")
    tab = await open_shop_page(browser, url, timezone_id="Asia/Tokyo")
    try:
        assert await launcher_status(tab) == "Closed · Leave a message"
        assert await tab.page.locator(".vt-dot").get_attribute("data-open") == "false"
        await tab.page.locator(".vt-launcher").click()

        view = tab.page.locator(".vt-view-unavailable")
        await expect(view).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(tab.page.locator(".vt-unavailable-heading")).to_have_text(
            "We're closed right now", timeout=STATE_TIMEOUT_MS
        )
        assert await tab.page.locator(".vt-slot-section").is_hidden()  # never open: no slots to offer

        form = tab.page.locator(".vt-message-form")
        await form.locator("[name=name]").fill("Ada Lovelace")
        await form.locator("[name=contact]").fill("not a contact")
        await form.locator("button[type=submit]").click()
        await expect(tab.page.locator(".vt-form-error")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        assert not tab.sent("leave_message"), "an invalid contact is caught before it is sent"

        await form.locator("[name=contact]").fill("ada@example.com")
        await form.locator("[name=text]").fill(f"Is the mug dishwasher safe? {INJECTION}")
        await form.locator("button[type=submit]").click()
        saved = tab.page.locator(".vt-request-saved")
        await expect(saved).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(saved).to_contain_text("Your message was sent", timeout=STATE_TIMEOUT_MS)
        await tab.screenshot("widget-closed-message.png")

        async with server.api() as api:
            response = await api.get("/v1/shops/acme/requests")
        assert response.status_code == 200, f"GET /v1/shops/acme/requests: {response.status_code} {response.text}"
        requests = response.json()
        assert len(requests) == 1, requests
        request = requests[0]
        assert request["kind"] == "message" and request["slot_utc_ms"] is None
        assert (request["name"], request["contact"]) == ("Ada Lovelace", "ada@example.com")
        assert request["text"] == f"Is the mug dishwasher safe? {INJECTION}"
        context = request["context"]
        assert context["language"] == "en" and context["timezone"] == "Asia/Tokyo", context
        assert context["sku"] == "mug-1" and context["page_url"] == url, context
        assert context["page_title"] == "Stoneware mug · Acme" and context["audio_only"] is False, context

        await saved.locator(".vt-done").click()
        await expect(tab.page.locator(".vt-panel")).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        assert await tab.page.evaluate("window.__pwned === undefined")
        assert not tab.errors, tab.errors
    finally:
        await tab.close()


async def test_callback_slots_are_shown_in_the_shoppers_time_zone(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    # Open only the day after tomorrow (Paris), 09:00-12:00: closed now, with slots to book.
    paris = ZoneInfo("Europe/Paris")
    day = (datetime.now(paris) + timedelta(days=2)).date()
    await make_shop(
        server,
        "acme",
        shop_pages.origin,
        timezone="Europe/Paris",
        hours=[{"day": WEEKDAYS[day.weekday()].value, "opens": "09:00", "closes": "12:00"}],
    )
    shopper_zone = ZoneInfo("America/New_York")
    tab = await open_shop_page(browser, product_url(shop_pages, "acme"), timezone_id="America/New_York")
    try:
        status = await launcher_status(tab)
        assert status.startswith("Closed · opens "), status
        await tab.page.locator(".vt-launcher").click()

        slots = tab.page.locator(".vt-slots button[data-slot]")
        await expect(slots.first).to_be_visible(timeout=STATE_TIMEOUT_MS)
        assert await slots.count() == 6  # 09:00 to 11:30, every 30 minutes
        first_ms = int(await slots.first.get_attribute("data-slot") or 0)
        first = datetime.fromtimestamp(first_ms / 1000, UTC)
        assert first.astimezone(paris).replace(tzinfo=None) == datetime.combine(day, datetime.min.time()).replace(
            hour=9
        )
        # Weekday, date and time, on the shopper's clock (New York), not the shop's (Paris).
        local = first.astimezone(shopper_zone)
        label = await slots.first.text_content() or ""
        hour = local.hour % 12 or 12
        assert local.strftime("%a") in label and local.strftime("%b") in label, label
        assert str(local.day) in label and f"{hour}:{local.minute:02d}" in label, label

        third = slots.nth(2)
        chosen = int(await third.get_attribute("data-slot") or 0)
        await third.click()
        assert await third.get_attribute("aria-pressed") == "true"
        submit = tab.page.locator(".vt-message-form button[type=submit]")
        await expect(submit).to_contain_text("Book callback", timeout=STATE_TIMEOUT_MS)
        await tab.page.locator(".vt-message-form [name=name]").fill("Grace")
        await tab.page.locator(".vt-message-form [name=contact]").fill("+1 212 555 0100")
        await tab.screenshot("widget-callback-slots.png")
        await submit.click()
        await expect(tab.page.locator(".vt-request-saved")).to_contain_text("We'll call you", timeout=STATE_TIMEOUT_MS)

        async with server.api() as api:
            response = await api.get("/v1/shops/acme/requests")
        assert response.status_code == 200, f"GET /v1/shops/acme/requests: {response.status_code} {response.text}"
        [request] = response.json()
        assert request["kind"] == "callback" and request["slot_utc_ms"] == chosen, request
        assert request["contact"] == "+1 212 555 0100" and request["context"]["timezone"] == "America/New_York"
        assert not tab.errors, tab.errors
    finally:
        await tab.close()


async def test_device_check_previews_the_camera_and_moves_the_mic_meter(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=ALWAYS_OPEN)
    console = await login_agent(server, "acme", "ann")
    tab = await open_shop_page(browser, product_url(shop_pages, "acme"))
    try:
        await launcher_status(tab)
        await tab.page.locator(".vt-launcher").click()
        await expect(tab.page.locator(".vt-view-intro")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await tab.page.locator(".vt-continue").click()

        preview = f'{ROOT}.querySelector(".vt-view-check video.local")'
        await tab.wait_for(
            f"() => {{ const v = {preview}; return v && v.videoWidth > 0 && v.currentTime > 0; }}",
            what="a playing camera preview",
        )
        shown = await tab.page.evaluate(f"""() => {{
          const v = {preview};
          return {{ muted: v.muted, inline: v.playsInline, mirror: getComputedStyle(v).transform,
                   facing: v.srcObject.getVideoTracks()[0].getSettings().facingMode ?? null }};
        }}""")
        assert shown["muted"] and shown["inline"], shown
        assert shown["mirror"].startswith("matrix(-1"), shown  # a mirror, as people expect of themselves

        level = f'Number({ROOT}.querySelector(".vt-level").dataset.level)'
        await tab.wait_for(f"() => {level} > 5", what="the mic meter to rise")
        first = await tab.page.evaluate(f"() => {level}")
        await tab.wait_for(f"(v) => {level} !== v", arg=first, what="the mic meter to move")
        await tab.screenshot("widget-device-check.png")

        # Audio only: the camera is released and the preview goes; the call may still start.
        await tab.page.locator(".vt-audio-only").check()
        await tab.wait_for(f"() => {preview}.srcObject === null && {preview}.hidden", what="the preview to go")
        await expect(tab.page.locator(".vt-start")).to_be_enabled(timeout=STATE_TIMEOUT_MS)

        # Queue: the position is pushed live, the resume token stays in sessionStorage (never in the console).
        await tab.page.locator(".vt-start").click()
        await expect(tab.page.locator(".vt-view-waiting")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(tab.page.locator(".vt-position")).not_to_have_text("", timeout=STATE_TIMEOUT_MS)
        await expect(tab.page.locator(".vt-position")).not_to_have_text("Connecting…", timeout=STATE_TIMEOUT_MS)
        token = await tab.page.evaluate('sessionStorage.getItem("vitrine-consult:acme:ticket")')
        assert token, "the ticket's resume token is kept for this tab"
        [enter] = tab.sent("enter")
        assert enter["shop"] == "acme" and enter["context"]["audio_only"] is True, enter
        assert not any(token in line for line in tab.log), "a token was logged"
        await expect(tab.page.locator(".vt-launcher-status")).not_to_have_text("", timeout=STATE_TIMEOUT_MS)
        await tab.screenshot("widget-waiting.png")

        await tab.page.locator(".vt-cancel").click()
        await expect(tab.page.locator(".vt-panel")).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        await tab.wait_for(
            '() => sessionStorage.getItem("vitrine-consult:acme:ticket") === null', what="the token to be forgotten"
        )
        assert tab.sent("cancel"), tab.diagnostics()
        # Nothing holds the microphone any more: the meter's AudioContext and every track are gone.
        assert await tab.page.evaluate(f'() => {ROOT}.querySelector(".vt-level").dataset.level') == "0"
        assert not tab.errors, tab.errors
    finally:
        await tab.close()
        await console.close()


async def test_denied_camera_offers_audio_only_or_a_message(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=ALWAYS_OPEN)
    console = await login_agent(server, "acme", "ann")
    tab = await open_shop_page(browser, product_url(shop_pages, "acme"), deny_media=True)
    try:
        await launcher_status(tab)
        await tab.page.locator(".vt-launcher").click()
        await tab.page.locator(".vt-continue").click()
        denied = tab.page.locator(".vt-denied")
        await expect(denied).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(denied).to_contain_text("couldn't use your camera or microphone", timeout=STATE_TIMEOUT_MS)
        await expect(denied.locator(".vt-join-audio")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        assert await tab.page.locator(".vt-start").is_disabled()
        await tab.screenshot("widget-denied.png")

        # The shop is open, yet this shopper only wants to write: the form, and a request on submit.
        await denied.locator(".vt-leave-message").click()
        await expect(tab.page.locator(".vt-unavailable-heading")).to_have_text(
            "Leave us a message", timeout=STATE_TIMEOUT_MS
        )
        form = tab.page.locator(".vt-message-form")
        await form.locator("[name=name]").fill("Ada")
        await form.locator("[name=contact]").fill("ada@example.com")
        await form.locator("[name=text]").fill("Call me about the blue mug, please.")
        await form.locator("button[type=submit]").click()
        await expect(tab.page.locator(".vt-request-saved")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        async with server.api() as api:
            requests = (await api.get("/v1/shops/acme/requests")).json()
            calls = (await api.get("/v1/shops/acme/calls")).json()
        assert [r["text"] for r in requests] == ["Call me about the blue mug, please."], requests
        assert calls == [], "leaving a message must not queue the shopper (no abandoned call record)"
        assert not [m for m in console.received if m["type"] == "ring"]
        assert not tab.errors, tab.errors
    finally:
        await tab.close()
        await console.close()


async def test_phone_panel_fills_the_screen(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=ALWAYS_OPEN)
    console = await login_agent(server, "acme", "ann")
    tab = await open_shop_page(
        browser, product_url(shop_pages, "acme"), viewport=SMALL_PHONE, has_touch=True, is_mobile=True
    )
    try:
        await launcher_status(tab)
        box = await tab.page.locator(".vt-launcher").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"] and box["height"] >= 44, box
        await tab.page.locator(".vt-launcher").tap()
        panel = tab.page.locator(".vt-panel")
        await expect(panel).to_be_visible(timeout=STATE_TIMEOUT_MS)

        fits = f"""() => {{
          const p = {ROOT}.querySelector(".vt-panel");
          const r = p.getBoundingClientRect();
          const small = [...p.querySelectorAll("button, input, textarea")]
            .filter((el) => el.offsetParent !== null && el.type !== "checkbox")
            .map((el) => [el.className, el.getBoundingClientRect().height])
            .filter(([, h]) => h < 44);
          return {{ x: r.x, y: r.y, w: r.width, h: r.height, overflowX: p.scrollWidth - p.clientWidth,
                   pageOverflowX: document.documentElement.scrollWidth - innerWidth, small }};
        }}"""
        layout = await tab.page.evaluate(fits)
        assert (layout["x"], layout["y"], layout["w"], layout["h"]) == (
            0,
            0,
            SMALL_PHONE["width"],
            SMALL_PHONE["height"],
        ), layout
        assert layout["overflowX"] <= 0 and layout["pageOverflowX"] <= 0 and not layout["small"], layout
        assert await tab.page.locator(".vt-launcher").is_hidden()  # the panel covers the screen
        await tab.screenshot("widget-phone-intro.png")

        await tab.page.locator(".vt-continue").tap()
        await tab.wait_for(
            f'() => {ROOT}.querySelector(".vt-view-check video.local").videoWidth > 0', what="the camera preview"
        )
        layout = await tab.page.evaluate(fits)
        assert layout["overflowX"] <= 0 and not layout["small"], layout
        start = await tab.page.locator(".vt-start").bounding_box()
        assert start and start["x"] >= 0 and start["x"] + start["width"] <= SMALL_PHONE["width"], start
        await tab.screenshot("widget-phone-check.png")

        await tab.page.locator(".vt-close").tap()
        await expect(panel).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        await expect(tab.page.locator(".vt-launcher")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        assert not tab.errors, tab.errors
    finally:
        await tab.close()
        await console.close()


async def test_an_unknown_shop_stays_out_of_the_way(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    tab = await open_shop_page(browser, product_url(shop_pages, "no-such-shop"))
    try:
        await tab.wait_for(
            '() => document.querySelector("vitrine-consult")?.shadowRoot?.querySelector(".vt-root")',
            what="the widget to mount",
        )
        await expect(tab.page.locator(".vt-launcher")).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        warnings = [line for line in tab.log if "vitrine consult" in line]
        assert len(warnings) <= 1, tab.diagnostics()  # said once, not on every refresh
        assert not tab.errors, tab.errors
    finally:
        await tab.close()


async def test_a_page_change_keeps_the_place_in_line(
    server: RunningServer, browser: playwright_api.Browser, shop_pages: ShopPages
) -> None:
    await make_shop(server, "acme", shop_pages.origin, hours=ALWAYS_OPEN)
    console = await login_agent(server, "acme", "ann")  # rung, but never answers
    tab = await open_shop_page(browser, product_url(shop_pages, "acme", product="mug-1"))
    position = tab.page.locator(".vt-position")
    try:
        await launcher_status(tab)
        await tab.page.locator(".vt-launcher").click()
        await tab.page.locator(".vt-continue").click()
        await expect(tab.page.locator(".vt-start")).to_be_enabled(timeout=STATE_TIMEOUT_MS)
        await tab.page.locator(".vt-start").click()
        ticket = (await console.expect("ring", timeout=STATE_TIMEOUT_S))["ticket"]
        await expect(position).not_to_have_text(re.compile(r"^$|Connecting"), timeout=STATE_TIMEOUT_MS)
        # While it rings, the widget's connection to the call's room is up on the worker, kept apart.
        first = await waiting_connections(server, 1)

        # The shopper opens another product: the widget resumes the ticket instead of queueing again.
        mark = console.mark()
        await tab.page.goto(product_url(shop_pages, "acme", product="lamp-2"))
        await expect(tab.page.locator(".vt-view-waiting")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(position).not_to_have_text(re.compile(r"^$|Connecting"), timeout=STATE_TIMEOUT_MS)
        assert (len(tab.sent("enter")), len(tab.sent("resume"))) == (1, 1), tab.diagnostics()
        await console.expect(
            "queue", lambda m: [e["ticket"] for e in m["entries"]] == [ticket], after=mark, timeout=STATE_TIMEOUT_S
        )
        # The old page's connection went with it; the new page connects again while it still rings.
        assert (await waiting_connections(server, 1)).isdisjoint(first)

        await tab.page.locator(".vt-cancel").click()
        await console.expect("queue", lambda m: m["total"] == 0, after=mark, timeout=STATE_TIMEOUT_S)
        # Leaving while it rang frees everything: the connection at the door, the worker's room, the call's room.
        await waiting_connections(server, 0)
        assert server.runtime is not None
        deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_S
        while server.runtime.media_worker.rooms or await server.runtime.state.rooms.list_rooms():
            assert asyncio.get_running_loop().time() < deadline, tab.diagnostics()
            await asyncio.sleep(0.1)
        assert not tab.errors, tab.errors
    finally:
        await tab.close()
        await console.close()


async def waiting_connections(server: RunningServer, count: int) -> set[str]:
    """Wait until the worker holds ``count`` connections at a door (knocks), all connected; their sids."""
    assert server.runtime is not None
    worker = server.runtime.media_worker
    deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_S
    while True:
        peers = [peer for room in worker.rooms.values() for peer in room.waiting.values()]
        if len(peers) == count and all(peer.pc.connectionState == "connected" for peer in peers):
            return {peer.sid for peer in peers}
        assert asyncio.get_running_loop().time() < deadline, [(p.sid, p.pc.connectionState) for p in peers]
        await asyncio.sleep(0.1)
