"""What every browser test shares: Debian Chromium with fake devices, artifacts, a watched page, and a
shop's own pages.

The shop's pages are served from a second origin (another port on 127.0.0.1), so the widget runs
cross-origin exactly as it does on a real storefront. The ``browser`` fixture (tests/conftest.py)
launches Chromium through ``chromium()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

playwright_api = pytest.importorskip("playwright.async_api")

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
STATE_TIMEOUT_S = STATE_TIMEOUT_MS / 1000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Markup that must only ever be shown as text: parsed, it would set window.__pwned.
INJECTION = '<img src=x onerror="window.__pwned=1">'


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[playwright_api.Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is not installed: run scripts/install-system-deps")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


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


# -- the shop's own pages ----------------------------------------------------------------------------


class ShopPages:
    """A shop's web server on 127.0.0.1 (a port of its own, so an origin of its own).

    ``render(path, query)`` writes the page for a GET of ``path`` (one value a query key), or returns
    None for a 404. Pages are never cached.
    """

    def __init__(self, render: Callable[[str, dict[str, str]], str | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parts = urlsplit(self.path)
                html = render(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})
                if html is None:
                    self.send_error(404)
                    return
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="shop-pages", daemon=True)
        self._thread.start()

    def url(self, path: str, **params: str) -> str:
        return self.origin + path + (f"?{urlencode(params)}" if params else "")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> ShopPages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def shop_page(html: str, name: str = "product.html") -> Iterator[str]:
    """Serve ``html`` from its own origin; yields the page URL (``http://127.0.0.1:<port>/<name>``)."""
    with ShopPages(lambda path, _query: html if path == f"/{name}" else None) as pages:
        yield pages.url(f"/{name}")


def origin_of(url: str) -> str:
    return url.split("/", 3)[0] + "//" + url.split("/", 3)[2]


def embed_html(vitrine_url: str, shop: str, sku: str, *, head: str = "", lang: str | None = None) -> str:
    """A plain product page with the one-line embed, recording add-to-cart events the way a shop would."""
    lang_attr = f' data-lang="{lang}"' if lang else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blue mug - Acme</title><link rel="icon" href="data:,">{head}</head>
<body><h1>Blue mug</h1><p>12.50 EUR</p>
<script>window.cartEvents = []; document.addEventListener("vitrine:add-to-cart", (e) => cartEvents.push(e.detail));
</script>
<script src="{vitrine_url}/widget.js" data-shop="{shop}" data-product="{sku}"{lang_attr} async></script>
</body></html>"""
