"""What every browser test shares: Debian Chromium with fake devices, artifacts, a watched page, and a
shop's own pages.

The launch and the shop's pages live in the load harness (loadtest/browser.py: the browser benchmarks use
them too) and are re-exported here. The shop's pages are served from a second origin (another port on
127.0.0.1), so the widget runs cross-origin exactly as it does on a real storefront. The ``browser``
fixture (tests/conftest.py) launches Chromium through ``chromium()``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loadtest import browser as harness_browser
from loadtest.browser import (  # noqa: F401 - re-exported for the tests
    CHROMIUM,
    CHROMIUM_ARGS,
    ShopPages,
    embed_html,
    origin_of,
    shop_page,
)

playwright_api = pytest.importorskip("playwright.async_api")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Generous: a loaded 2-core machine runs Chromium twice plus the server and its media worker.
STATE_TIMEOUT_MS = 30_000
STATE_TIMEOUT_S = STATE_TIMEOUT_MS / 1000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Markup that must only ever be shown as text: parsed, it would set window.__pwned.
INJECTION = '<img src=x onerror="window.__pwned=1">'


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[playwright_api.Browser]:
    if not harness_browser.chromium_installed():
        pytest.fail(harness_browser.CHROMIUM_MISSING)
    async with harness_browser.chromium() as browser:
        yield browser


async def screenshot(
    page: playwright_api.Page, filename: str, *, full_page: bool = True, animations: str = "allow"
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / filename), full_page=full_page, animations=animations)


# -- a page under test ------------------------------------------------------------------------------


@dataclass
class WatchedPage:
    """A page whose console (and uncaught exceptions) are kept, with waits that fail showing them."""

    page: playwright_api.Page
    name: str = ""  # which side, in failure messages ("agent", "customer", ...)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", lambda msg: self.log.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", self.page_error)

    def page_error(self, exc: playwright_api.Error) -> None:
        self.log.append(f"pageerror: {exc}")

    def prefix(self) -> str:
        return f"[{self.name}] " if self.name else ""

    def diagnostics(self) -> str:
        return self.prefix() + "console:\n  " + "\n  ".join(self.log[-40:])

    async def timed_out(self, what: str) -> str:
        """The failure message of a wait for ``what``."""
        return f"{self.prefix()}timed out waiting for {what}\n{self.diagnostics()}"

    async def wait_for(self, expression: str, arg: object = None, what: str = "") -> None:
        """Poll the JavaScript ``expression`` until it is truthy; fail with the diagnostics if it never is."""
        try:
            await self.page.wait_for_function(expression, arg=arg, timeout=STATE_TIMEOUT_MS, polling=100)
        except playwright_api.TimeoutError:
            raise AssertionError(await self.timed_out(what or expression)) from None

    async def wait_remote_video_plays(self, root: str = "document") -> None:
        """The first video.remote under ``root`` plays and its clock moves (read it, then wait for it to advance)."""
        await self.wait_for(video_playing(root), what="a playing video.remote")
        t0 = await self.page.evaluate(f'{root}.querySelector("video.remote").currentTime')
        await self.wait_for(
            f"""(t0) => {{
  const v = {root}.querySelector("video.remote");
  return v !== null && v.currentTime > t0 + 0.5;
}}""",
            arg=t0,
            what="video.remote currentTime to advance",
        )

    async def screenshot(self, filename: str, **options: Any) -> None:
        await screenshot(self.page, filename, **options)

    async def close(self) -> None:
        await self.page.context.close()


async def assert_csp_blocks_inline_handlers(
    browser: playwright_api.Browser, url: str, *, ready: str | None = None
) -> None:
    """Defence in depth for a page with a strict CSP: were markup ever injected, its handlers would not run.

    The context keeps the CSP (no bypass), so it waits with selectors, which need no eval. ``ready``: a
    selector the page shows once its own script has run.
    """
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(url)
        if ready is not None:
            await page.locator(ready).wait_for(state="attached", timeout=STATE_TIMEOUT_MS)
        await page.evaluate("""() => {
          document.body.insertAdjacentHTML("beforeend", '<img id="probe" src="/x" onerror="window.__pwned=1">');
          document.getElementById("probe").addEventListener("error", () => { document.body.dataset.probed = "1"; });
        }""")
        await page.locator("body[data-probed='1']").wait_for(state="attached", timeout=STATE_TIMEOUT_MS)
        assert await page.evaluate("window.__pwned") is None
    finally:
        await context.close()


def video_playing(root: str = "document", selector: str = "video.remote") -> str:
    """JavaScript: the first ``selector`` under ``root`` has decoded frames and is playing."""
    return f"""() => {{
  const v = {root}.querySelector("{selector}");
  return v !== null && v.videoWidth > 0 && v.currentTime > 0 && !v.paused;
}}"""


def record_sent_frames(page: playwright_api.Page, frames: list[dict[str, Any]], url_part: str = "") -> None:
    """Append to ``frames`` each JSON frame ``page`` sends on a WebSocket whose URL contains ``url_part``.

    A frame's ``token`` is removed: a credential stays out of anything a failure might print.
    """

    def on_websocket(ws: playwright_api.WebSocket) -> None:
        if url_part not in ws.url:
            return

        def on_frame(payload: str | bytes) -> None:
            try:
                message = json.loads(payload)
            except ValueError:
                return
            message.pop("token", None)
            frames.append(message)

        ws.on("framesent", on_frame)

    page.on("websocket", on_websocket)
