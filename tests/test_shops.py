"""Shops: validation, the URL allow-list, opening hours across DST, and the shop store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from signaling.records import Records, open_records
from vitrine.core.config import Settings
from vitrine.core.errors import HTTP_STATUS, ErrorCode, VitrineError
from vitrine.core.shops import Agent, Product, Shop, check_product, is_open, next_opening, url_allowed


def _shop(shop_id: str = "acme", **fields) -> Shop:
    values = {"id": shop_id, "name": "Acme", "allowed_origins": ["https://acme.example"]} | fields
    return Shop.model_validate(values)


def _product(sku: str = "mug-1", **fields) -> Product:
    values = {
        "sku": sku,
        "title": "Mug",
        "price": "12.50",
        "currency": "EUR",
        "url": "https://acme.example/p/mug-1",
        "image_url": "https://cdn.acme.example/mug.jpg",
    } | fields
    return Product.model_validate(values)


def shop_zone(shop: Shop) -> ZoneInfo:
    return ZoneInfo(shop.timezone)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- models --------------------------------------------------------------------------


def test_origins_are_normalized_and_give_the_default_link_hosts() -> None:
    shop = _shop(allowed_origins=["HTTPS://Acme.Example", "https://acme.example", "http://localhost:5173"])
    assert shop.allowed_origins == ["https://acme.example", "http://localhost:5173"]
    assert shop.link_hosts == ["acme.example", "localhost"]
    assert _shop(link_hosts=["*.Acme.example"]).link_hosts == ["*.acme.example"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://acme.example",
        "https://acme.example/shop",
        "https://u@acme.example",
        "javascript:alert(1)",
        "https://acme.example:99999",
        "acme.example",
    ],
)
def test_bad_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError):
        _shop(allowed_origins=[origin])


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "A_b"},
        {"id": "ab"},
        {"name": ""},
        {"name": "x" * 129},
        {"timezone": "Mars/Olympus"},
        {"max_wait_s": 5},
        {"languages": []},
        {"link_hosts": ["*.com."]},
        {"unknown": 1},
        {"opening_hours": [{"day": "mon", "opens": "18:00", "closes": "09:00"}]},
        {"opening_hours": [{"day": "mon", "opens": "09:00", "closes": "24:01"}]},
        {
            "opening_hours": [
                {"day": "mon", "opens": "09:00", "closes": "13:00"},
                {"day": "mon", "opens": "12:00", "closes": "18:00"},
            ]
        },
    ],
)
def test_bad_shop_fields_are_refused(fields: dict) -> None:
    with pytest.raises(ValidationError):
        _shop(**fields)


def test_product_price_is_exact_and_bounded() -> None:
    assert _product(price=19.99).price == Decimal("19.99")
    assert _product(price="1e3").model_dump(mode="json")["price"] == "1000"
    for bad in ("-1", "1.00001", "NaN"):
        with pytest.raises(ValidationError):
            _product(price=bad)
    with pytest.raises(ValidationError):
        _product(currency="eur")
    with pytest.raises(ValidationError):
        _product(sku="a/b")


def test_url_allow_list() -> None:
    hosts = ["acme.example", "*.cdn.example"]
    assert url_allowed("https://acme.example/p/1?x=1", hosts)
    assert url_allowed("https://eu.cdn.example/i.jpg", hosts)
    assert url_allowed("https://a.eu.cdn.example/i.jpg", hosts)
    assert not url_allowed("https://cdn.example/i.jpg", hosts)  # the wildcard means subdomains only
    assert not url_allowed("https://evilcdn.example/i.jpg", hosts)
    assert not url_allowed("https://acme.example.evil.example/", hosts)
    assert not url_allowed("http://acme.example/p/1", hosts)
    assert not url_allowed("javascript:alert(1)//acme.example", hosts)
    assert not url_allowed("//acme.example/p/1", hosts)
    assert not url_allowed("https://evil.example\\@acme.example/", hosts)
    assert not url_allowed("https://user@acme.example/", hosts)
    assert not url_allowed("https://acme.example\t/", hosts)


def test_check_product_names_the_refused_field() -> None:
    shop = _shop(link_hosts=["acme.example", "*.acme.example"])
    check_product(shop, _product())
    with pytest.raises(VitrineError) as refused:
        check_product(shop, _product(image_url="https://images.other.example/mug.jpg"))
    assert refused.value.code == ErrorCode.URL_NOT_ALLOWED and refused.value.message.startswith("image_url:")
    with pytest.raises(VitrineError) as refused:
        check_product(shop, _product(url="javascript:alert(document.cookie)"))
    assert refused.value.message.startswith("url:") and refused.value.http_status == 422


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)


# -- opening hours -------------------------------------------------------------------

PARIS_SUNDAYS = [
    {"day": "sun", "opens": "09:00", "closes": "12:00"},
    {"day": "sun", "opens": "14:00", "closes": "18:00"},
]


def test_hours_follow_the_shop_clock_across_dst() -> None:
    shop = _shop(timezone="Europe/Paris", opening_hours=PARIS_SUNDAYS)
    # 2025-03-30: Paris springs from UTC+1 to UTC+2 at 02:00. 07:30 UTC is 09:30 CEST: open.
    assert is_open(shop, _utc(2025, 3, 30, 7, 30))
    assert not is_open(shop, _utc(2025, 3, 30, 6, 59))  # 08:59 CEST
    assert not is_open(shop, _utc(2025, 3, 30, 10, 0))  # 12:00 CEST: closes is exclusive
    # 2025-10-26: back to UTC+1. 07:30 UTC is 08:30 CET: closed; 08:00 UTC is 09:00 CET: open.
    assert not is_open(shop, _utc(2025, 10, 26, 7, 30))
    assert is_open(shop, _utc(2025, 10, 26, 8, 0))
    # From Saturday evening, before each change, the next opening is Sunday 09:00 local.
    assert next_opening(shop, _utc(2025, 3, 29, 20, 0)).astimezone(UTC) == _utc(2025, 3, 30, 7, 0)
    assert next_opening(shop, _utc(2025, 10, 25, 20, 0)).astimezone(UTC) == _utc(2025, 10, 26, 8, 0)
    # Between the two Sunday spans: the afternoon one.
    assert next_opening(shop, _utc(2025, 3, 30, 11, 0)).astimezone(UTC) == _utc(2025, 3, 30, 12, 0)


def test_an_opening_inside_the_dst_gap_opens_when_the_clock_jumps() -> None:
    shop = _shop(timezone="Europe/Paris", opening_hours=[{"day": "sun", "opens": "02:30", "closes": "04:00"}])
    opening = next_opening(shop, _utc(2025, 3, 30, 0, 0))  # 01:00 CET
    assert opening.astimezone(UTC) == _utc(2025, 3, 30, 1, 0) and opening.hour == 3 and opening.minute == 0
    swallowed = _shop(timezone="Europe/Paris", opening_hours=[{"day": "sun", "opens": "02:00", "closes": "02:45"}])
    assert next_opening(swallowed, _utc(2025, 3, 30, 0, 0)).date().isoformat() == "2025-04-06"


def test_a_span_ending_at_midnight_and_a_night_across_two_days() -> None:
    shop = _shop(
        timezone="Asia/Tokyo",
        opening_hours=[
            {"day": "fri", "opens": "20:00", "closes": "24:00"},
            {"day": "sat", "opens": "00:00", "closes": "02:00"},
        ],
    )
    friday_late = datetime(2025, 6, 6, 23, 59, 59, tzinfo=shop_zone(shop))
    assert is_open(shop, friday_late)
    assert is_open(shop, friday_late + timedelta(seconds=1))  # Saturday 00:00
    assert not is_open(shop, friday_late + timedelta(hours=2, seconds=1))  # Saturday 02:00
    assert next_opening(shop, friday_late) == friday_late


def test_next_opening_wraps_to_next_week_and_none_without_hours() -> None:
    shop = _shop(timezone="America/New_York", opening_hours=[{"day": "wed", "opens": "10:00", "closes": "11:00"}])
    wednesday_noon = datetime(2025, 6, 4, 12, 0, tzinfo=shop_zone(shop))
    assert next_opening(shop, wednesday_noon) == datetime(2025, 6, 11, 10, 0, tzinfo=shop_zone(shop))
    assert next_opening(_shop(), _utc(2025, 6, 4, 12, 0)) is None
    with pytest.raises(ValueError):
        is_open(shop, datetime(2025, 6, 4, 12, 0))  # naive


# -- stores --------------------------------------------------------------------------


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[Records]:
    """The records on the embedded SQLite database (tests/test_records.py runs every store on PostgreSQL too)."""
    opened = await open_records(Settings(data_dir=str(tmp_path)))
    yield opened
    await opened.close()


async def test_shop_crud(state: Records) -> None:
    shops = state.shops
    first = _shop("acme", created_at_ms=1)
    assert await shops.create_shop(first)
    assert not await shops.create_shop(_shop("acme", name="Other"))
    assert await shops.create_shop(_shop("beta", created_at_ms=2))
    assert await shops.get_shop("acme") == first
    assert [s.id for s in await shops.list_shops()] == ["acme", "beta"]
    assert await shops.update_shop(first.model_copy(update={"name": "Acme Ltd"}))
    assert (await shops.get_shop("acme")).name == "Acme Ltd"
    assert not await shops.update_shop(_shop("ghost"))
    assert await shops.get_shop("ghost") is None
    assert (await shops.delete_shop("acme")).name == "Acme Ltd"
    assert await shops.delete_shop("acme") is None
    assert [s.id for s in await shops.list_shops()] == ["beta"]


async def test_agents_and_products_are_scoped_and_cascade(state: Records) -> None:
    shops = state.shops
    await shops.create_shop(_shop("acme"))
    await shops.create_shop(_shop("beta"))
    agent = Agent(id="ana", shop="acme", display_name="Ana", languages=["en", "ES"])
    assert agent.languages == ["en", "es"]
    assert await shops.put_agent(agent)
    assert await shops.put_product("acme", _product("mug-1"))
    assert await shops.put_product("acme", _product("cup-2", price="3"))
    assert not await shops.put_agent(agent.model_copy(update={"shop": "ghost"}))
    assert not await shops.put_product("ghost", _product())

    assert await shops.get_agent("acme", "ana") == agent
    assert [p.sku for p in await shops.list_products("acme")] == ["cup-2", "mug-1"]
    assert (await shops.get_product("acme", "mug-1")).price == Decimal("12.50")
    # Shop B sees none of shop A's records, by list or by key.
    assert await shops.list_agents("beta") == [] and await shops.list_products("beta") == []
    assert await shops.get_agent("beta", "ana") is None and await shops.get_product("beta", "mug-1") is None
    assert await shops.delete_product("beta", "mug-1") is None
    assert await shops.get_product("acme", "mug-1") is not None

    assert (await shops.delete_product("acme", "cup-2")).sku == "cup-2"
    assert await shops.delete_agent("acme", "nobody") is None
    await shops.delete_shop("acme")
    assert await shops.list_agents("acme") == [] and await shops.list_products("acme") == []
    await shops.create_shop(_shop("acme"))  # recreated: starts empty, nothing resurrected
    assert await shops.get_agent("acme", "ana") is None and await shops.list_products("acme") == []
