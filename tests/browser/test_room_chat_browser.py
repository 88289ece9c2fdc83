"""Room chat through the browser client (web/vitrine-client.js) in Debian Chromium: history for a late
joiner, and a reconnect that catches up on what was said meanwhile, each line once and in order."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser_support import STATE_TIMEOUT_MS, playwright_api, record_sent_frames
from tests.servers import RunningServer
from vitrine.core.models import Role
from vitrine.core.wire.rpc import Kick

pytestmark = pytest.mark.browser

# A page that joins with the shared client and records its chat events (no camera: nothing to publish).
JOIN = """async (token) => {
  const { VitrineRoom } = await import("/vitrine-client.js");
  const room = new VitrineRoom();
  window.chat = []; window.lastHistory = null; window.joins = 0;
  room.addEventListener("chat", (e) => window.chat.push(e.detail));
  room.addEventListener("history", (e) => { window.lastHistory = e.detail; });
  room.addEventListener("joined", () => { window.joins += 1; });
  await room.connect({ token, publish: false, reconnect: true });
  window.room = room;
}"""


async def _page(
    browser: playwright_api.Browser, server: RunningServer, token: str, sent: list[dict] | None = None
) -> playwright_api.Page:
    page = await (await browser.new_context()).new_page()
    if sent is not None:
        record_sent_frames(page, sent, "/v1/rtc")
    await page.goto(server.url + "/")
    await page.evaluate(JOIN, token)
    return page


async def _wait(page: playwright_api.Page, expression: str, arg: object = None) -> None:
    await page.wait_for_function(expression, arg=arg, timeout=STATE_TIMEOUT_MS, polling=50)


async def test_the_browser_client_keeps_chat_whole_across_a_reconnect(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    host = await _page(browser, server, server.token("show-b", "host", Role.HOST))
    for n in range(3):
        await host.evaluate("(n) => window.room.sendChat(`line ${n}`)", n)
    await _wait(host, "() => window.chat.length === 3")

    sent: list[dict] = []
    viewer = await _page(browser, server, server.token("show-b", "viewer", Role.VIEWER, create=False), sent)
    await viewer.evaluate("() => window.room.requestHistory()")
    await _wait(viewer, "() => window.lastHistory !== null")
    texts = await viewer.evaluate("() => window.lastHistory.entries.map((e) => e.text)")
    assert texts == ["line 0", "line 1", "line 2"]
    assert await viewer.evaluate("() => window.chat.length") == 0  # history is not replayed as live chat

    # The viewer's session drops (a phone changing network); the host keeps talking meanwhile.
    assert server.runtime is not None
    (viewer_sid,) = [
        sid
        for sid, session in server.runtime.hub.sessions.items()
        if session.admission and session.admission.participant.identity == "viewer"
    ]
    await server.runtime.hub.sessions[viewer_sid].on_kick(Kick(sid=viewer_sid, reason="network change", reconnect=True))
    deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_MS / 1000
    while viewer_sid in server.runtime.hub.sessions:  # gone; the client waits 0.5 s before it rejoins
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    for n in range(3, 5):
        await host.evaluate("(n) => window.room.sendChat(`line ${n}`)", n)
    await _wait(viewer, "() => window.joins === 2")
    await viewer.evaluate("() => window.room.sendChat('line 5')")  # the host has used its burst of five
    await _wait(viewer, "() => window.chat.length >= 3")
    assert await viewer.evaluate("() => window.chat.map((e) => e.seq)") == [4, 5, 6]
    assert await viewer.evaluate("() => window.chat.map((e) => e.text)") == ["line 3", "line 4", "line 5"]
    # The missed lines came from the client's own catch-up after it rejoined.
    assert {"type": "history", "after": 3, "limit": 200} in sent, [m for m in sent if m["type"] == "history"]
    for page in (host, viewer):
        await page.context.close()
