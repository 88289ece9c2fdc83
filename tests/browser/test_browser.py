"""The browser path: Debian's Chromium, driven headless by Playwright, joins through web/index.html.

Chromium's fake camera and microphone publish; the media worker forwards the
RTP to the other tab without decoding it, and each tab must actually play the
other's video. Screenshots land in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.browser_support import DESKTOP, PHONE, WatchedPage, playwright_api, record_sent_frames
from tests.servers import RunningServer
from vitrine.core.models import Role

pytestmark = pytest.mark.browser


@dataclass
class Tab(WatchedPage):
    """One browser context (its own cookies, camera, WebSocket) on the call page."""

    sent: list[dict] = field(default_factory=list)  # signaling frames the page sent, token removed

    async def status(self) -> str:
        return await self.page.locator("#status").text_content() or ""

    async def timed_out(self, what: str) -> str:
        return f"[{self.name}] timed out waiting for {what}; status={await self.status()!r}\n{self.diagnostics()}"

    async def join(self) -> None:
        await self.page.locator("#join").click()

    async def wait_remote_video_plays(self, root: str = "document") -> None:
        """A remote video plays, its clock moves, and it has a size."""
        await super().wait_remote_video_plays(root)
        size = await self.page.evaluate(
            f'(() => {{ const v = {root}.querySelector("video.remote"); return [v.videoWidth, v.videoHeight]; }})()'
        )
        assert size[0] > 0 and size[1] > 0, f"[{self.name}] remote video has no size: {size}"


async def open_tab(
    browser: playwright_api.Browser, server: RunningServer, name: str, token: str, viewport: dict[str, int]
) -> Tab:
    context = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
    tab = Tab(page=await context.new_page(), name=name)
    record_sent_frames(tab.page, tab.sent)
    await tab.page.goto(server.url + "/#token=" + token)
    return tab


async def leave(tab: Tab) -> None:
    if await tab.page.locator("#leave").is_visible():
        await tab.page.locator("#leave").click()
    await tab.close()


def forwarded_without_decoding(server: RunningServer) -> dict[str, int]:
    assert server.runtime is not None and server.runtime.media_worker is not None
    stats = server.runtime.media_worker.media_stats()
    assert stats["decoders_running"] == 0, stats
    assert stats["encoders_created"] == 0, stats
    assert stats["packets_out"] > 0, stats
    return stats


async def test_two_tabs_see_each_other(server: RunningServer, browser: playwright_api.Browser) -> None:
    customer = await open_tab(browser, server, "customer", server.token("browser-call", "cust-1", Role.CUSTOMER), PHONE)
    agent = await open_tab(browser, server, "agent", server.token("browser-call", "agent-1", Role.AGENT), DESKTOP)
    try:
        # The fragment filled the form and was dropped from the address bar.
        assert "token=" not in customer.page.url
        await customer.join()
        await agent.join()

        for tab in (customer, agent):
            await tab.wait_for(
                'document.getElementById("status").textContent === "connected"', what='status "connected"'
            )
        for tab in (customer, agent):
            await tab.wait_remote_video_plays()
            assert await tab.page.evaluate('document.getElementById("local").srcObject !== null')
            sids = await tab.page.evaluate(
                '[...document.querySelectorAll("video.remote")].map((v) => v.dataset.trackSid)'
            )
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
        await customer.wait_for(
            'document.querySelectorAll("video.remote, #remotes figure").length === 0', what="the agent's tile to go"
        )
        assert await customer.status() == "connected"
    finally:
        await leave(customer)
        await leave(agent)


async def test_viewer_watches_without_publishing(server: RunningServer, browser: playwright_api.Browser) -> None:
    host = await open_tab(browser, server, "customer", server.token("browser-watch", "cust-2", Role.CUSTOMER), DESKTOP)
    viewer = await open_tab(browser, server, "viewer", server.token("browser-watch", "viewer-1", Role.VIEWER), PHONE)
    try:
        await host.join()
        await host.wait_for('document.getElementById("status").textContent === "connected"', what='status "connected"')
        await viewer.join()
        await viewer.wait_remote_video_plays()
        await viewer.wait_for(
            'document.getElementById("status").textContent === "connected"', what='status "connected"'
        )

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
