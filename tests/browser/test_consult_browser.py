"""The storefront consult end to end in Debian Chromium: a shopper on a shop's own page, an agent in
the console, and a real call between them through the media worker.

Screenshots of both sides at each step land in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.browser_support import (
    DESKTOP,
    PHONE,
    STATE_TIMEOUT_MS,
    WatchedPage,
    embed_html,
    origin_of,
    playwright_api,
    shop_page,
)
from tests.desk_helpers import agent_token, make_shop
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

WIDGET = 'document.querySelector("vitrine-consult").shadowRoot'
AVAILABLE = '() => document.querySelector("#status").textContent.toLowerCase().includes("available")'


async def test_a_shopper_on_a_shop_page_calls_an_agent_in_the_console(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    with shop_page(embed_html(server.url, "acme", "mug-1")) as page_url:
        await make_shop(server, allowed_origins=[origin_of(page_url)], link_hosts=["acme.example"])
        async with server.api() as api:  # no images: a browser test never leaves loopback
            for sku in ("mug-1", "lamp-2"):
                product = (await api.get(f"/v1/shops/acme/products/{sku}")).json()
                product.pop("image_url")
                (await api.put(f"/v1/shops/acme/products/{sku}", json=product)).raise_for_status()

        # bypass_csp: the console's CSP forbids eval, and Playwright evaluates the tests' string predicates.
        agent_ctx = await browser.new_context(viewport=DESKTOP, permissions=["camera", "microphone"], bypass_csp=True)
        agent = WatchedPage(page=await agent_ctx.new_page(), name="agent")
        await agent.page.goto(f"{server.url}/agent.html#token={await agent_token(server, 'acme', 'ann')}")
        await agent.page.locator("#go-available").click()
        await agent.wait_for(AVAILABLE, what="status available")
        assert "token=" not in agent.page.url

        shopper_ctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"], locale="en-US")
        shopper = WatchedPage(page=await shopper_ctx.new_page(), name="shopper")
        await shopper.page.goto(page_url)
        await shopper.page.locator(".vt-launcher").click()
        await shopper.page.locator(".vt-continue").click()
        await shopper.wait_for(
            f'() => {WIDGET}.querySelector("video.local")?.videoWidth > 0', what="the device check preview"
        )
        await shopper.screenshot("consult-shopper-device-check.png")
        await shopper.page.locator(".vt-start").click()

        # While it rings, the console has already joined the call's room, alone, and the widget's connection
        # is up on the worker, kept apart (a knock the agent never sees): accepting only admits it.
        await agent.page.locator("#ring .accept").wait_for(timeout=STATE_TIMEOUT_MS)
        assert server.runtime is not None
        rooms, worker = server.runtime.state.rooms, server.runtime.media_worker
        deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_MS / 1000
        while (
            not (
                standby := [
                    (r.name, [p.identity for p in await rooms.list_participants(r.name)])
                    for r in await rooms.list_rooms()
                ]
            )
            or not standby[0][1]
            or worker.media_stats()["waiting"] != 1
            or not any(p.pc.connectionState == "connected" for r in worker.rooms.values() for p in r.waiting.values())
        ):
            assert asyncio.get_running_loop().time() < deadline, f"no standby join\n{agent.diagnostics()}"
            await asyncio.sleep(0.1)
        assert standby == [(standby[0][0], ["agent-ann"])]
        stats = worker.media_stats()
        assert (stats["participants"], stats["waiting"], stats["subscriptions"]) == (1, 1, 0)
        assert await agent.page.evaluate('() => !document.querySelector("video.remote")?.srcObject')
        assert len(await rooms.list_knocks(standby[0][0])) == 1  # the widget's, stored for the accept to answer
        await agent.page.locator("#ring .accept").click(timeout=STATE_TIMEOUT_MS)
        try:
            await agent.wait_remote_video_plays()
            await shopper.wait_remote_video_plays(WIDGET)
        except AssertionError as exc:  # one side's failure may start on the other: show both
            raise AssertionError(f"{exc}\n{agent.diagnostics()}\n{shopper.diagnostics()}") from None
        await shopper.screenshot("consult-shopper-in-call.png")
        await agent.screenshot("consult-agent-in-call.png")

        # The media session drops (a phone changing network, a worker moving): both sides join again
        # with the same token and a fresh peer connection, and the call's video plays again.
        hub = server.runtime.hub
        (room,) = hub.local_rooms()
        before = set(hub.sessions)
        await hub.kick_local(room, "network change", reconnect=True)
        deadline = asyncio.get_running_loop().time() + STATE_TIMEOUT_MS / 1000
        while len(set(hub.rooms.get(room, ())) - before) < 2:
            assert asyncio.get_running_loop().time() < deadline, f"no rejoin\n{agent.diagnostics()}"
            await asyncio.sleep(0.1)
        await agent.wait_remote_video_plays()
        await shopper.wait_remote_video_plays(WIDGET)

        await shopper.page.locator(".vt-chat-input").fill("Is it dishwasher safe?")
        await shopper.page.locator(".vt-chat-send").click()
        await agent.page.locator("#chat-log .line", has_text="Is it dishwasher safe?").wait_for()
        await agent.page.locator("#chat-input").fill("<b>Yes</b>, it is")
        await agent.page.locator("#chat-send").click()
        await shopper.page.locator(".vt-line", has_text="<b>Yes</b>, it is").wait_for()  # shown as text

        await agent.page.locator('#catalog button.show[data-sku="lamp-2"]').click()
        card = shopper.page.locator(".vt-card", has_text="Lamp 2")
        await card.wait_for()
        await card.locator(".vt-add-to-cart").click()
        await shopper.wait_for("() => window.cartEvents.length === 1", what="the shop page's add-to-cart hook")
        assert (await shopper.page.evaluate("window.cartEvents[0].sku")) == "lamp-2"
        await shopper.screenshot("consult-shopper-product-card.png")

        await agent.page.locator("#end-call").click()
        await shopper.page.locator('.vt-stars button[data-stars="4"]').click(timeout=STATE_TIMEOUT_MS)
        await shopper.page.locator(".vt-comment").fill("Helpful, thanks")
        await shopper.page.locator(".vt-rate-submit").click()
        await shopper.page.locator(".vt-thanks").wait_for(timeout=STATE_TIMEOUT_MS)
        await agent.page.locator("#wrapup-notes").fill("Sent lamp link")
        await agent.page.locator("#wrapup-submit").click()
        await agent.wait_for(AVAILABLE, what="available after wrap-up")
        await shopper.screenshot("consult-shopper-rated.png")
        await agent.screenshot("consult-agent-after-call.png")

        async with server.api() as api:
            calls = (await api.get("/v1/shops/acme/calls")).json()
            metrics = (await api.get("/metrics")).text
        record = calls[0]
        assert (record["outcome"], record["rating"], record["comment"]) == ("answered", 4, "Helpful, thanks")
        assert [line["text"] for line in record["chat"]] == ["Is it dishwasher safe?", "<b>Yes</b>, it is"]
        assert [p["sku"] for p in record["products_shown"]] == ["lamp-2"]
        assert record["added_to_cart"] == ["lamp-2"]
        assert record["wrap_up"] == "Sent lamp link"
        assert record["context"]["sku"] == "mug-1" and record["context"]["page_url"] == page_url
        # The widget reported accept -> first remote frame to the server's metrics.
        count = next(
            line for line in metrics.splitlines() if line.startswith("vitrine_consult_first_frame_seconds_count")
        )
        assert float(count.split()[-1]) >= 1
        for side in (agent, shopper):
            assert not [line for line in side.log if line.startswith("error")], side.diagnostics()
        await agent.close()
        await shopper.close()
