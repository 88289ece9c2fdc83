"""Headless Debian Chromium with fake devices, and a shop's own pages, for the browser benchmarks and tests.

Playwright comes with the ``test`` extra (``pip install 'vitrine[test]'``); it is imported when a browser
is launched, not before. The shop's pages are served from a second origin (another port on 127.0.0.1), so
the widget runs cross-origin exactly as it does on a real storefront.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

if TYPE_CHECKING:
    from playwright.async_api import Browser

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
PLAYWRIGHT_MISSING = "Playwright is not installed: pip install 'vitrine[test]' (or pip install playwright)"
CHROMIUM_MISSING = f"{CHROMIUM} is not installed: run scripts/install-system-deps"


class BrowserUnavailable(RuntimeError):
    """Playwright or Chromium is missing; the message says what to install."""


def playwright_api() -> ModuleType:
    """``playwright.async_api``, or BrowserUnavailable saying how to install it."""
    try:
        return importlib.import_module("playwright.async_api")
    except ImportError as exc:
        raise BrowserUnavailable(PLAYWRIGHT_MISSING) from exc


def chromium_installed() -> bool:
    return os.access(CHROMIUM, os.X_OK)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian Chromium with a fake camera and microphone, closed on the way out."""
    if not chromium_installed():
        raise BrowserUnavailable(CHROMIUM_MISSING)
    async with playwright_api().async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


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
