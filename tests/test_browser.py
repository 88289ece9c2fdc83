"""The browser path: Debian's Chromium, driven headless by Playwright, joins through web/index.html.

Chromium's fake camera and microphone publish; the media worker forwards the
RTP to the other tab without decoding it, and each tab must actually play the
other's video. Screenshots land in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import RunningServer
from vitrine.models import Role

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Generous: a loaded 2-core machine runs Chromium twice plus the server and its media worker.
STATE_TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# A remote video that has decoded frames and is playing.
REMOTE_VIDEO_PLAYING = """() => {
  const v = document.querySelector("video.remote");
  return v !== null && v.videoWidth > 0 && v.currentTime > 0 && !v.paused;
}"""
REMOTE_VIDEO_ADVANCED = """(t0) => {
  const v = document.querySelector("video.remote");
  return v !== null && v.currentTime > t0 + 0.5;
}"""


@dataclass
class Tab:
    """One browser context (its own cookies, camera, WebSocket) on the call page."""

    name: str
    page: playwright_api.Page
    log: list[str] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)  # signaling frames the page sent, token removed

    def diagnostics(self) -> str:
        return f"[{self.name}] console:\n  " + "\n  ".join(self.log[-40:])

    async def status(self) -> str:
        return await self.page.locator("#status").text_content() or ""

    async def join(self) -> None:
        await self.page.locator("#join").click()

    async def wait_for(self, expression: str, arg: object = None, what: str = "") -> None:
        try:
            await self.page.wait_for_function(expression, arg=arg, timeout=STATE_TIMEOUT_MS, polling=100)
        except playwright_api.TimeoutError:
            raise AssertionError(f"[{self.name}] timed out waiting for {what or expression}; "
                                 f"status={await self.status()!r}\n{self.diagnostics()}") from None

    async def wait_remote_video_plays(self) -> None:
        """A remote video has a size and its clock moves (read it, then wait for it to advance)."""
        await self.wait_for(REMOTE_VIDEO_PLAYING, what="a playing video.remote")
        t0 = await self.page.evaluate('document.querySelector("video.remote").currentTime')
        await self.wait_for(REMOTE_VIDEO_ADVANCED, arg=t0, what="video.remote currentTime to advance")
        size = await self.page.evaluate(
            '(() => { const v = document.querySelector("video.remote"); return [v.videoWidth, v.videoHeight]; })()')
        assert size[0] > 0 and size[1] > 0, f"[{self.name}] remote video has no size: {size}"

    async def screenshot(self, filename: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / filename), full_page=True)


@pytest.fixture
async def browser(server: RunningServer) -> AsyncIterator[playwright_api.Browser]:
    """Headless Debian Chromium. Depends on ``server`` so it closes before the server stops."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed")
    async with playwright_api.async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


async def open_tab(browser: playwright_api.Browser, server: RunningServer, name: str, token: str,
                   viewport: dict[str, int]) -> Tab:
    context = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
    page = await context.new_page()
    tab = Tab(name=name, page=page)
    page.on("console", lambda msg: tab.log.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: tab.log.append(f"pageerror: {exc}"))

    def on_websocket(ws: playwright_api.WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            try:
                message = json.loads(payload)
            except ValueError:
                return
            message.pop("token", None)  # keep the credential out of anything a failure might print
            tab.sent.append(message)
        ws.on("framesent", on_frame)

    page.on("websocket", on_websocket)
    await page.goto(server.url + "/#token=" + token)
    return tab


async def leave(tab: Tab) -> None:
    if await tab.page.locator("#leave").is_visible():
        await tab.page.locator("#leave").click()
    await tab.page.context.close()


def forwarded_without_decoding(server: RunningServer) -> dict[str, int]:
    assert server.runtime is not None and server.runtime.media_worker is not None
    stats = server.runtime.media_worker.media_stats()
    assert stats["decoders_running"] == 0, stats
    assert stats["encoders_created"] == 0, stats
    assert stats["packets_out"] > 0, stats
    return stats


async def test_two_tabs_see_each_other(server: RunningServer, browser: playwright_api.Browser) -> None:
    customer = await open_tab(browser, server, "customer", server.token("browser-call", "cust-1", Role.CUSTOMER),
                              PHONE)
    agent = await open_tab(browser, server, "agent", server.token("browser-call", "agent-1", Role.AGENT), DESKTOP)
    try:
        # The fragment filled the form and was dropped from the address bar.
        assert "token=" not in customer.page.url
        await customer.join()
        await agent.join()

        for tab in (customer, agent):
            await tab.wait_for('document.getElementById("status").textContent === "connected"',
                               what='status "connected"')
        for tab in (customer, agent):
            await tab.wait_remote_video_plays()
            assert await tab.page.evaluate('document.getElementById("local").srcObject !== null')
            sids = await tab.page.evaluate(
                '[...document.querySelectorAll("video.remote")].map((v) => v.dataset.trackSid)')
            assert sids and all(s.startswith("TR_") for s in sids), sids

        stats = forwarded_without_decoding(server)
        assert stats["published_tracks"] == 4, stats  # audio and video from each tab

        joins = [m for tab in (customer, agent) for m in tab.sent if m.get("type") == "join"]
        assert all({t["kind"] for t in m["publish"]} == {"audio", "video"} for m in joins), joins

        await customer.screenshot("browser-call-customer.png")
        await agent.screenshot("browser-call-agent.png")
        for tab in (customer, agent):
            assert not [line for line in tab.log if "error" in line.lower()], tab.diagnostics()

        # The agent leaves: the server renegotiates the customer's session and the tile goes.
        await agent.page.locator("#leave").click()
        await customer.wait_for('document.querySelectorAll("video.remote, #remotes figure").length === 0',
                                what="the agent's tile to go")
        assert await customer.status() == "connected"
    finally:
        await leave(customer)
        await leave(agent)


async def test_viewer_watches_without_publishing(server: RunningServer, browser: playwright_api.Browser) -> None:
    host = await open_tab(browser, server, "customer", server.token("browser-watch", "cust-2", Role.CUSTOMER),
                          DESKTOP)
    viewer = await open_tab(browser, server, "viewer", server.token("browser-watch", "viewer-1", Role.VIEWER), PHONE)
    try:
        await host.join()
        await host.wait_for('document.getElementById("status").textContent === "connected"',
                            what='status "connected"')
        await viewer.join()
        await viewer.wait_remote_video_plays()
        await viewer.wait_for('document.getElementById("status").textContent === "connected"',
                              what='status "connected"')

        # The viewer decided before joining: no camera asked for, an empty publish list sent.
        joins = [m for m in viewer.sent if m.get("type") == "join"]
        assert len(joins) == 1 and joins[0]["publish"] == [], joins
        assert await viewer.page.evaluate('document.getElementById("local").srcObject === null')
        errors = [line for line in viewer.log if "error" in line.lower()]
        assert not errors, viewer.diagnostics()

        stats = forwarded_without_decoding(server)
        assert stats["published_tracks"] == 2, stats  # only the customer's audio and video
        assert stats["participants"] == 2, stats
        # Nothing comes back to the customer.
        assert await host.page.evaluate('document.querySelectorAll("video.remote").length') == 0

        await host.screenshot("browser-watch-customer.png")
        await viewer.screenshot("browser-watch-viewer.png")
    finally:
        await leave(viewer)
        await leave(host)
