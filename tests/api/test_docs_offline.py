"""``/docs`` works on a machine without the internet: Swagger UI's scripts and styles come from this server
(signaling/openapi.py serves them from the ``swagger-ui-bundle`` package), not from a CDN.

Chromium loads the page with every request to anything but loopback aborted; FastAPI's default page, which takes
its assets from cdn.jsdelivr.net, rendered blank there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser_support import DESKTOP, WatchedPage, playwright_api
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


async def test_docs_render_every_operation_with_the_network_cut_off(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        schema = (await http.get("/openapi.json")).json()
        assert (await http.get("/redoc")).status_code == 404  # ReDoc has no packaged assets: not offered
    operations = sum(len(methods) for methods in schema["paths"].values())
    context = await browser.new_context(viewport=DESKTOP)
    blocked: list[str] = []

    async def loopback_only(route: playwright_api.Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await context.route("**/*", loopback_only)
    try:
        docs = WatchedPage(await context.new_page(), "docs")
        await docs.page.goto(f"{server.url}/docs")
        await docs.wait_for(
            "(n) => document.querySelectorAll('.opblock').length === n", arg=operations, what="every operation"
        )
        # An operation opens with its documented errors: the typed error model, by status.
        await docs.page.locator("#operations-live-patch_show_v1_shops__shop__shows__show__patch").click()
        responses = docs.page.locator(
            "#operations-live-patch_show_v1_shops__shop__shows__show__patch .responses-table .response-col_status"
        )
        await responses.filter(has_text="404").wait_for(timeout=30_000)
        statuses = await responses.all_inner_texts()
        assert {"200", "401", "404", "409", "422", "500"} <= {status.strip() for status in statuses}, statuses
    finally:
        await context.close()
    assert blocked == [], f"the docs page reached out of the machine: {blocked}"
