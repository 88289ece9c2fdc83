"""The consoles and the live player in the reader's language (web/vitrine-i18n.js), in headless Debian Chromium.

A Chinese browser (zh-CN) opens the agent console, the live-selling console and the inspector's console: each
main screen reads in Chinese, with no Latin word left on it but the shop's own data (SKUs, an order number), the
brand and language codes. The visible text nodes are collected and checked, and each screen is kept as a
screenshot. Picking English with the switch changes the page at once and is remembered across a reload. The
live player, in each of its five languages, shows its own words, and its dates and prices follow the locale.

One server and one Chromium for the module; one page per console and per player language.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser_support import DESKTOP, PHONE, STATE_TIMEOUT_MS, WatchedPage, chromium, playwright_api
from tests.desk_helpers import agent_token, make_shop
from tests.live_helpers import go_live
from tests.servers import RunningServer, embedded_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

expect = playwright_api.expect

SHOP = "acme"
SHOP_NAME = "示例小店"
PRODUCTS = {"mug-1": ("陶瓷马克杯", "12.50"), "lamp-2": ("北欧台灯", "89.00")}
ORDER = "A-1042"
SCHEDULED_MS = 1_900_000_000_000  # 2030: the player shows when the show starts
# Latin text the Chinese screens may keep: the shop's data, the brand, product and language codes.
ALLOWED_STRINGS = [*PRODUCTS, ORDER]
ALLOWED_WORDS = {"Vitrine", "OBS", "en", "zh", "EN", "ZH"}
LATIN_WORD = re.compile(r"[A-Za-z]+")

# The visible text of the page: text nodes whose element is rendered, the placeholders of empty fields, and
# the option a visible <select> shows (the others are not on screen).
VISIBLE_TEXT = """() => {
  const texts = [];
  const shown = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest("select, script, style, noscript, template") || !shown(el)) continue;
    texts.push(text);
  }
  for (const field of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (shown(field) && !field.value) texts.push(field.placeholder);
  }
  for (const select of document.querySelectorAll("select")) {
    if (shown(select) && select.selectedOptions.length) texts.push(select.selectedOptions[0].textContent.trim());
  }
  return texts;
}"""


def english_left(texts: list[str]) -> list[str]:
    """The texts that still hold a Latin word once the allowed strings and words are set aside."""
    left = []
    for text in texts:
        rest = text
        for allowed in ALLOWED_STRINGS:
            rest = rest.replace(allowed, " ")
        if any(word not in ALLOWED_WORDS for word in LATIN_WORD.findall(rest)):
            left.append(text)
    return left


# -- one server, one browser, one shop --------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("VITRINE_TEST_ARTIFACTS") or tmp_path_factory.mktemp("console-languages"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console language screenshots: {folder}")
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    recordings = tmp_path_factory.mktemp("recordings")
    async with embedded_server(recordings_dir=str(recordings)) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(server: RunningServer) -> AsyncIterator[playwright_api.Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(server: RunningServer) -> str:
    """A Chinese seller's shop: its name, agent and products are in Chinese (they are data, not the console's)."""
    await make_shop(server, SHOP, name=SHOP_NAME, agents={"ann": ["zh", "en"]}, link_hosts=[f"{SHOP}.example"])
    async with server.api() as api:
        agent = await api.put(f"/v1/shops/{SHOP}/agents/ann", json={"display_name": "小安", "languages": ["zh", "en"]})
        agent.raise_for_status()
        for sku, (title, price) in PRODUCTS.items():
            product = await api.put(
                f"/v1/shops/{SHOP}/products/{sku}",
                json={
                    "title": title,
                    "price": price,
                    "currency": "EUR",
                    "url": f"https://{SHOP}.example/p/{sku}",
                    "image_url": f"https://{SHOP}.example/i/{sku}.png",
                },
            )
            product.raise_for_status()
    return SHOP


async def create_show(server: RunningServer, title: str, **setup: Any) -> dict[str, Any]:
    async with server.api() as api:
        response = await api.post(f"/v1/shops/{SHOP}/shows", json={"title": title, "products": list(PRODUCTS), **setup})
        response.raise_for_status()
        show: dict[str, Any] = response.json()
        return show


async def open_tab(browser: playwright_api.Browser, locale: str, name: str, viewport: dict[str, int]) -> WatchedPage:
    """A fresh context in ``locale`` (its own localStorage), product images served locally."""
    context = await browser.new_context(viewport=viewport, locale=locale, bypass_csp=True)
    await context.route(
        re.compile(rf"^https://{SHOP}\.example/"),
        lambda route: route.fulfill(status=200, content_type="image/png", body=b""),
    )
    return WatchedPage(page=await context.new_page(), name=name)


async def check_chinese(tab: WatchedPage, artifacts: Path, filename: str) -> None:
    """The page is in Chinese (<html lang>, the switch) with no English left on screen; keep a screenshot."""
    path = artifacts / filename
    await tab.page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert await tab.page.evaluate("document.documentElement.lang") == "zh"
    texts = await tab.page.evaluate(VISIBLE_TEXT)
    assert len(texts) > 15, texts  # the main screen is drawn, not a loading page
    assert any("\u4e00" <= char <= "\u9fff" for text in texts for char in text)
    assert english_left(texts) == [], f"English left on {filename}: {english_left(texts)}\n{tab.diagnostics()}"
    assert [line for line in tab.log if line.startswith("pageerror")] == [], tab.diagnostics()


# -- the consoles, in Chinese ----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_console(browser: playwright_api.Browser, server: RunningServer, shop: str) -> WatchedPage:
    tab = await open_tab(browser, "zh-CN", "agent", DESKTOP)
    await tab.page.goto(f"{server.url}/agent.html#token={await agent_token(server, shop, 'ann')}")
    await console_ready(tab)
    return tab


async def console_ready(tab: WatchedPage) -> None:
    await tab.wait_for(
        '!document.getElementById("console").hidden && document.querySelectorAll("#catalog li").length === 2'
        ' && document.querySelectorAll("#agents li").length === 1',
        what="the agent console signed in, its catalog and team drawn",
    )


async def test_the_agent_console_reads_in_chinese(agent_console: WatchedPage, artifacts: Path) -> None:
    page = agent_console.page
    await expect(page.locator("#queue-title [data-i18n=queue]")).to_have_text("排队")
    await expect(page.locator("#catalog .product button.show").first).to_have_text("展示")
    await expect(page.locator("#shop-open")).to_have_text("营业中")
    assert await page.locator("header select.lang-switch").input_value() == "zh"
    await check_chinese(agent_console, artifacts, "agent-console-zh.png")


async def test_english_picked_on_a_chinese_browser_is_kept_after_a_reload(agent_console: WatchedPage) -> None:
    page = agent_console.page
    await page.locator("header select.lang-switch").select_option("en")
    await expect(page.locator("#queue-title [data-i18n=queue]")).to_have_text("Queue")  # at once, no reload
    await expect(page.locator("#catalog .product button.show").first).to_have_text("Show")
    await expect(page.locator("#shop-open")).to_have_text("open")
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.evaluate("localStorage.getItem('vitrine.lang')") == "en"

    await page.reload()  # the tab's session signs in again
    await console_ready(agent_console)
    await expect(page.locator("#catalog-title [data-i18n=catalog]")).to_have_text("Catalog")
    await expect(page.locator("#login-view [data-i18n=login_hint]")).to_contain_text("Paste the agent token")
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.locator("header select.lang-switch").input_value() == "en"
    assert await page.evaluate("navigator.language") == "zh-CN"  # still a Chinese browser

    await page.locator("header select.lang-switch").select_option("zh")  # and back
    await expect(page.locator("#catalog-title [data-i18n=catalog]")).to_have_text("商品目录")


async def test_the_live_console_reads_in_chinese(
    browser: playwright_api.Browser, server: RunningServer, shop: str, artifacts: Path
) -> None:
    show = await create_show(server, "春季上新")
    async with server.api() as api:
        login = await api.post(f"/v1/shops/{shop}/shows/{show['id']}/console")
        login.raise_for_status()
    tab = await open_tab(browser, "zh-CN", "live console", DESKTOP)
    await tab.page.goto(login.json()["console_url"])
    await tab.wait_for(
        'document.body.dataset.phase === "setup" && document.querySelectorAll("#show-products li").length === 2',
        what="the show's setup, its products listed",
    )
    await expect(tab.page.locator("#show-state")).to_have_text("未开播")
    await expect(tab.page.locator("#go-live")).to_have_text("开播")
    await expect(tab.page.locator('#source [data-i18n="source_camera"]')).to_have_text("摄像头 + 麦克风")
    await check_chinese(tab, artifacts, "live-console-zh.png")


async def test_the_inspector_console_reads_in_chinese(
    browser: playwright_api.Browser, server: RunningServer, shop: str, artifacts: Path
) -> None:
    async with server.api() as api:
        opened = await api.post(
            f"/v1/shops/{shop}/cases", json={"order_ref": ORDER, "claim": "台灯灯罩在运输途中裂了", "language": "zh"}
        )
        assert opened.status_code == 201, opened.text
        login = await api.post(f"/v1/shops/{shop}/cases/{opened.json()['case']['id']}/console")
        login.raise_for_status()
    tab = await open_tab(browser, "zh-CN", "inspector", DESKTOP)
    await tab.page.goto(login.json()["console_url"])
    await tab.wait_for(
        'document.body.dataset.phase === "live" && document.getElementById("connection").textContent === "已连接"',
        what="the inspector joined to the case's room",
    )
    await expect(tab.page.locator("#case-order")).to_have_text(f"订单 {ORDER}")
    await expect(tab.page.locator("#buyer-state")).to_have_text("买家未连接")
    await expect(tab.page.locator('#presets button[data-prompt="prompt_damage"]')).to_have_text("看破损处")
    # The prompt itself is what the buyer reads: in the case's language.
    assert await tab.page.locator('#presets button[data-prompt="prompt_damage"]').get_attribute("title") == (
        "请近距离展示损坏的部位。"
    )
    await check_chinese(tab, artifacts, "inspector-console-zh.png")


# -- the live player, in its five languages ------------------------------------------------------------------

# locale -> (language, chat placeholder, "Coming up" badge)
PLAYER = {
    "en-US": ("en", "Say something…", "Coming up"),
    "zh-CN": ("zh", "说点什么…", "即将开播"),
    "es-ES": ("es", "Di algo…", "Próximamente"),
    "fr-FR": ("fr", "Dites quelque chose…", "À venir"),
    "de-DE": ("de", "Schreib etwas…", "Demnächst"),
}
# What the player's date and price should read in the page's locale (player-strings.js formatWhen/formatPrice).
EXPECTED_FORMATS = """([ms, price]) => ({
  when: new Intl.DateTimeFormat(navigator.language, { weekday: "short", day: "numeric", month: "short",
    hour: "numeric", minute: "2-digit" }).format(new Date(ms)),
  price: new Intl.NumberFormat(navigator.language, { style: "currency", currency: "EUR" }).format(price),
})"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shows(server: RunningServer, shop: str) -> dict[str, dict[str, Any]]:
    """A show coming up (its date on the page) and one on air (its chat), for every player language."""
    scheduled = await create_show(server, "新品预告", scheduled_at_ms=SCHEDULED_MS)
    live = await create_show(server, "直播进行中")
    console, _host = await go_live(server, live)
    await console.aclose()
    return {"scheduled": scheduled, "live": live}


@pytest.mark.parametrize("locale", list(PLAYER))
async def test_the_player_speaks_the_viewers_language_and_formats_for_their_locale(
    browser: playwright_api.Browser, server: RunningServer, shows: dict[str, dict[str, Any]], locale: str
) -> None:
    lang, placeholder, coming_up = PLAYER[locale]
    tab = await open_tab(browser, locale, f"viewer {locale}", PHONE)
    try:
        page = tab.page
        show = shows["scheduled"]
        await page.goto(f"{server.url}/watch.html?shop={SHOP}&show={show['id']}")
        await expect(page.locator(".vl-scheduled .vl-badge")).to_have_text(coming_up, timeout=STATE_TIMEOUT_MS)
        assert await page.evaluate("document.documentElement.lang") == lang
        formats = await page.evaluate(EXPECTED_FORMATS, [SCHEDULED_MS, float(PRODUCTS["mug-1"][1])])
        when = await page.locator(".vl-when").text_content() or ""
        assert formats["when"] in when, (when, formats)
        prices = await page.locator(".vl-products .vl-price").all_text_contents()
        assert formats["price"] in prices, (prices, formats)
        if lang != "en":
            assert "Starts" not in when  # the player's own words around the date

        show = shows["live"]
        await page.goto(f"{server.url}/watch.html?shop={SHOP}&show={show['id']}")
        chat = page.locator(".vl-chat-input")
        await expect(chat).to_have_attribute("placeholder", placeholder, timeout=STATE_TIMEOUT_MS)
        assert json.loads(await page.evaluate("JSON.stringify(document.title)")).endswith(
            {"en": "Live", "zh": "直播中", "es": "En directo", "fr": "En direct", "de": "Live"}[lang]
        )
        assert [line for line in tab.log if line.startswith("pageerror")] == [], tab.diagnostics()
    finally:
        await tab.close()
