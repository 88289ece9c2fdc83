"""What the live show's browser tests share: the seller's console (web/live.html) and the viewer's page
(web/watch.html) opened in headless Debian Chromium, and the waits on them."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import zlib
from html import escape
from typing import Any

from tests.browser_support import DESKTOP, PHONE, WatchedPage, playwright_api, record_sent_frames, video_playing
from tests.servers import RunningServer

# -- the seller's console ----------------------------------------------------------------------------------

# Product images come from the shop's (made-up) host: a 1x1 PNG served locally.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2b5f1"
    "a70000000049454e44ae426082"
)
# Keep the page's peer connections reachable, to read which track its video sender carries.
RECORD_PEER_CONNECTIONS = """(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();"""


class LiveConsole(WatchedPage):
    """web/live.html in a tab."""

    async def text(self, selector: str) -> str:
        return (await self.page.locator(selector).text_content()) or ""

    async def phase(self, phase: str) -> None:
        await self.wait_for("(p) => document.body.dataset.phase === p", phase, what=f"the {phase} phase")

    async def connected(self) -> None:
        await self.wait_for(
            'document.getElementById("connection").textContent === "connected"', what="the console joined to the show"
        )

    async def pick(self, source: str) -> None:
        await self.page.locator(f'#source input[value="{source}"]').check()

    async def confirm(self) -> None:
        await self.page.locator("#confirm .confirm-ok").click()
        await self.wait_for('!document.getElementById("confirm").open', what="the dialog to close")

    async def go_live_with_camera(self) -> None:
        await self.pick("camera")
        await self.wait_for(video_playing(selector="#preview"), what="the camera preview")
        await self.page.locator("#go-live").click()
        await self.phase("live")
        await self.connected()

    async def chat_line(self, text: str) -> playwright_api.Locator:
        await self.wait_for(
            '(t) => [...document.querySelectorAll("#chat-log .line:not(.system) .text")]'
            ".some((el) => el.textContent === t)",
            text,
            what=f"the chat line {text!r}",
        )
        return self.page.locator("#chat-log .line:not(.system)").filter(
            has=self.page.locator(".text", has_text=re.compile("^" + re.escape(text) + "$"))
        )

    def no_errors(self, *expected: str) -> None:
        """No error in the page's console but the ``expected`` ones (a refusal the test asked for)."""
        errors = [
            line
            for line in self.log
            if line.startswith(("error", "pageerror")) and not any(part in line for part in expected)
        ]
        assert not errors, self.diagnostics()


async def open_console(
    browser: playwright_api.Browser, server: RunningServer, show: dict[str, Any], viewport: dict[str, int] = DESKTOP
) -> tuple[LiveConsole, str]:
    """The console from the link the shop's backend mints; returns it and its token."""
    async with server.api() as api:
        response = await api.post(f"/v1/shops/{show['shop']}/shows/{show['id']}/console")
        response.raise_for_status()
        login = response.json()
    assert login["console_url"] == f"{server.url}/live.html#token={login['token']}"
    # bypass_csp: the console's CSP forbids eval, and Playwright evaluates the tests' string predicates.
    context = await browser.new_context(
        viewport=viewport,
        locale="en-US",
        bypass_csp=True,
        accept_downloads=True,
        permissions=["camera", "microphone", "clipboard-read", "clipboard-write"],
    )
    await context.route(
        re.compile(r"^https://[a-z0-9-]+\.example/"),
        lambda route: route.fulfill(status=200, content_type="image/png", body=PNG),
    )
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    console = LiveConsole(page=await context.new_page(), name="console")
    # A reload while sending asks "leave the page?" (beforeunload): the seller says yes.
    console.page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await console.page.goto(login["console_url"])
    return console, login["token"]


# -- the viewer's page -------------------------------------------------------------------------------------

NAME_KEY = "vitrine-live-name"

# Every viewer page: getUserMedia still works, but each call is counted (a viewer must never make one).
COUNT_GET_USER_MEDIA = """
window.__getUserMediaCalls = 0;
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (...args) => { window.__getUserMediaCalls += 1; return original(...args); };
}
"""


def _png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A solid square PNG: the shop's product photo."""
    row = b"\x00" + bytes(rgb) * size
    body = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


PHOTOS = {"mug-1": _png((31, 111, 235)), "lamp-2": _png((229, 160, 40))}


async def _shop_site(route: playwright_api.Route) -> None:
    """https://acme.example as the browser sees it: product photos, and a page for each product."""
    name = route.request.url.rsplit("/", 1)[-1]
    sku = name.removesuffix(".jpg")
    if name.endswith(".jpg") and sku in PHOTOS:
        await route.fulfill(body=PHOTOS[sku], content_type="image/png")
    else:
        await route.fulfill(
            body=f"<!doctype html><title>{escape(sku)}</title><h1>{escape(sku)}</h1>", content_type="text/html"
        )


def watch_url(server: RunningServer, show: dict[str, Any]) -> str:
    return f"{server.url}/watch.html?shop={show['shop']}&show={show['id']}"


async def open_viewer(
    browser: playwright_api.Browser,
    url: str,
    name: str,
    *,
    viewport: dict[str, int] = PHONE,
    stored_name: str | None = None,
    sent: list[dict[str, Any]] | None = None,
) -> WatchedPage:
    context = await browser.new_context(viewport=viewport, locale="en-US")
    await context.add_init_script(COUNT_GET_USER_MEDIA)
    if stored_name is not None:  # a viewer who chatted here before
        await context.add_init_script(f"localStorage.setItem({json.dumps(NAME_KEY)}, {json.dumps(stored_name)})")
    await context.route("https://acme.example/**", _shop_site)
    viewer = WatchedPage(page=await context.new_page(), name=name)
    if sent is not None:
        record_sent_frames(viewer.page, sent, "/v1/rtc")
    await viewer.page.goto(url)
    return viewer


async def wait_video_plays(tab: WatchedPage, root: str = "document") -> None:
    """The player's video has decoded frames, plays, and keeps decoding new ones."""
    video = f'{root}?.querySelector("video.vl-video")'
    playing = f"() => {{ const v = {video}; return v && v.videoWidth > 0 && v.currentTime > 0 && !v.paused; }}"
    try:
        await tab.wait_for(playing, what="the live video to play")
    except AssertionError as exc:
        state = await tab.page.evaluate(f"""() => {{
          const v = {video};
          return v && {{ readyState: v.readyState, width: v.videoWidth, time: v.currentTime, paused: v.paused,
                        tracks: v.srcObject && v.srcObject.getTracks().map((t) => `${{t.kind}}:${{t.readyState}}`),
                        page: {root}.querySelector(".vl-stage")?.textContent }};
        }}""")
        raise AssertionError(f"{exc}\nvideo: {state}") from None
    frames = await tab.page.evaluate(f"() => {video}.getVideoPlaybackQuality().totalVideoFrames")
    await tab.wait_for(
        f"(n) => {video}.getVideoPlaybackQuality().totalVideoFrames > n + 10", frames, what="ten more decoded frames"
    )
