"""Shops (tenants) with their agents and product catalog. Authenticated with the API key and secret.

The path names the shop, agent and SKU; a body may repeat them but never contradict them, so a
request can only ever write under the shop it addresses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError

from signaling.deps import ApiKeyDep, SettingsDep, ShopDeletionDep, ShopDep, StateDep
from signaling.webhook_targets import check_webhook_url
from vitrine.core.errors import ErrorCode, VitrineError, error_responses
from vitrine.core.models import Strict
from vitrine.core.shops import (
    MAX_URL_LENGTH,
    SKU_PATTERN,
    SLUG_PATTERN,
    Agent,
    AgentFields,
    AgentId,
    Languages,
    NewShop,
    OpeningSpan,
    Product,
    ProductFields,
    Shop,
    ShopId,
    Sku,
    check_product,
    is_open,
    local_time,
    next_opening,
)
from vitrine.core.webhooks import MAX_FAILURES, WebhookFailure, webhook_key

T = TypeVar("T")

router = APIRouter(prefix="/v1/shops", tags=["shops"], dependencies=[ApiKeyDep])

AgentPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="Agent id: a slug")]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="Product SKU")]


class ShopPatch(Strict):
    """Fields to change; absent fields keep their value. The result is validated as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    allowed_origins: list[str] | None = Field(default=None, max_length=32)
    link_hosts: list[str] | None = Field(default=None, max_length=32)
    timezone: str | None = Field(default=None, max_length=64)
    opening_hours: list[OpeningSpan] | None = Field(default=None, max_length=70)
    languages: Languages | None = None
    max_wait_s: int | None = Field(default=None, ge=10, le=3600)
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH, description="null turns webhooks off")
    evidence_retention_days: int | None = Field(default=None, ge=1, le=3650)


class WebhookKey(Strict):
    key: str = Field(description="Verify Vitrine-Signature with it (vitrine.core.webhooks.verify)")
    version: int


class AgentBody(AgentFields):
    id: AgentId | None = Field(default=None, description="Optional; must equal the path's agent id")
    shop: ShopId | None = Field(default=None, description="Optional; must equal the path's shop id")


class ProductBody(ProductFields):
    sku: Sku | None = Field(default=None, description="Optional; must equal the path's SKU")


class ShopHours(Strict):
    open: bool
    timezone: str
    now_local: datetime
    next_opening_local: datetime | None = Field(description="Equals now_local while open; null: no opening hours")
    next_opening_utc: datetime | None


def _found(record: T | None, code: ErrorCode, message: str) -> T:
    if record is None:
        raise VitrineError(code, message)
    return record


def _same(field: str, given: str | None, path: str) -> None:
    if given is not None and given != path:
        raise VitrineError(ErrorCode.INVALID_MESSAGE, f"{field}: body says {given!r} but the path says {path!r}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Shop,
    summary="Create a shop: embed origins, link hosts, opening hours, languages",
    responses=error_responses(ErrorCode.SHOP_EXISTS, ErrorCode.URL_NOT_ALLOWED),
)
async def create_shop(body: NewShop, settings: SettingsDep, state: StateDep) -> Shop:
    shop = Shop.model_validate(body.model_dump())
    check_webhook_url(shop.webhook_url, settings)
    if not await state.records.shops.create_shop(shop):
        raise VitrineError(ErrorCode.SHOP_EXISTS, f"shop {shop.id!r} exists")
    return shop


@router.get("", response_model=list[Shop], summary="List shops, oldest first")
async def list_shops(state: StateDep) -> list[Shop]:
    return await state.records.shops.list_shops()


@router.get(
    "/{shop}", response_model=Shop, summary="A shop's settings", responses=error_responses(ErrorCode.SHOP_NOT_FOUND)
)
async def get_shop(shop: ShopDep) -> Shop:
    return shop


@router.patch(
    "/{shop}",
    response_model=Shop,
    summary="Change some of a shop's settings (validated as a whole)",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.URL_NOT_ALLOWED),
)
async def update_shop(shop: ShopDep, body: ShopPatch, settings: SettingsDep, state: StateDep) -> Shop:
    try:
        updated = Shop.model_validate(shop.model_dump() | body.model_dump(exclude_unset=True))
    except ValidationError as exc:  # reported like a malformed body: 422 invalid_message
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc
    if "webhook_url" in body.model_fields_set:  # checked when set; every delivery checks it again anyway
        check_webhook_url(updated.webhook_url, settings)
    if not await state.records.shops.update_shop(updated):
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop.id!r}")
    return updated


@router.delete(
    "/{shop}",
    response_model=Shop,
    summary="Delete a shop with its agents, products, call records, requests, shows and inspection evidence",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def delete_shop(shop: str, delete: ShopDeletionDep) -> Shop:
    deleted = await delete(shop)
    if deleted is None:
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop!r}")
    return deleted


@router.get(
    "/{shop}/hours",
    response_model=ShopHours,
    summary="Whether the shop is open now (or at ?at=), and when it next opens",
    responses=error_responses(ErrorCode.INVALID_MESSAGE, ErrorCode.SHOP_NOT_FOUND),
)
async def shop_hours(
    shop: ShopDep, at: Annotated[datetime | None, Query(description="An aware ISO 8601 time; default now")] = None
) -> ShopHours:
    if at is not None and at.utcoffset() is None:
        raise VitrineError(ErrorCode.INVALID_MESSAGE, "at: needs a UTC offset, e.g. 2025-03-30T09:00:00+02:00")
    when = at or datetime.now(UTC)
    opening = next_opening(shop, when)
    return ShopHours(
        open=is_open(shop, when),
        timezone=shop.timezone,
        now_local=local_time(shop, when),
        next_opening_local=opening,
        next_opening_utc=opening.astimezone(UTC) if opening else None,
    )


@router.get(
    "/{shop}/webhook-key",
    response_model=WebhookKey,
    summary="The key that signs the shop's webhooks (derived from the server secret, never stored)",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def get_webhook_key(shop: ShopDep, settings: SettingsDep) -> WebhookKey:
    version = shop.webhook_key_version
    return WebhookKey(key=webhook_key(settings, shop.id, version), version=version)


@router.post(
    "/{shop}/webhook-key/rotate",
    response_model=WebhookKey,
    summary="Replace the webhook key: the next deliveries are signed with the new one only",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def rotate_webhook_key(shop: ShopDep, settings: SettingsDep, state: StateDep) -> WebhookKey:
    shop.webhook_key_version += 1
    if not await state.records.shops.update_shop(shop):
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop.id!r}")
    return WebhookKey(key=webhook_key(settings, shop.id, shop.webhook_key_version), version=shop.webhook_key_version)


@router.get(
    "/{shop}/webhook-failures",
    response_model=list[WebhookFailure],
    summary="Events whose every delivery attempt failed, newest first (the last 200 are kept)",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def webhook_failures(
    shop: ShopDep, state: StateDep, limit: Annotated[int, Query(ge=1, le=MAX_FAILURES)] = 50
) -> list[WebhookFailure]:
    return await state.records.outbox.failures(shop.id, limit)


@router.put(
    "/{shop}/agents/{agent}",
    response_model=Agent,
    summary="Create or replace an agent of the shop",
    responses=error_responses(ErrorCode.INVALID_MESSAGE, ErrorCode.SHOP_NOT_FOUND),
)
async def put_agent(shop: ShopDep, agent: AgentPath, body: AgentBody, state: StateDep) -> Agent:
    # ShopDep has run first: an unknown shop id, which may not even be a valid slug, is shop_not_found.
    _same("shop", body.shop, shop.id)
    _same("id", body.id, agent)
    record = Agent(id=agent, shop=shop.id, **body.model_dump(exclude={"id", "shop"}))
    if not await state.records.shops.put_agent(record):
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop.id!r}")
    return record


@router.get(
    "/{shop}/agents",
    response_model=list[Agent],
    summary="The shop's agents, by id",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_agents(shop: ShopDep, state: StateDep) -> list[Agent]:
    return await state.records.shops.list_agents(shop.id)


@router.get(
    "/{shop}/agents/{agent}",
    response_model=Agent,
    summary="One agent of the shop",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.AGENT_NOT_FOUND),
)
async def get_agent(shop: ShopDep, agent: str, state: StateDep) -> Agent:
    return _found(
        await state.records.shops.get_agent(shop.id, agent),
        ErrorCode.AGENT_NOT_FOUND,
        f"no agent {agent!r} in shop {shop.id!r}",
    )


@router.delete(
    "/{shop}/agents/{agent}",
    response_model=Agent,
    summary="Remove an agent from the shop",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.AGENT_NOT_FOUND),
)
async def delete_agent(shop: ShopDep, agent: str, state: StateDep) -> Agent:
    return _found(
        await state.records.shops.delete_agent(shop.id, agent),
        ErrorCode.AGENT_NOT_FOUND,
        f"no agent {agent!r} in shop {shop.id!r}",
    )


@router.put(
    "/{shop}/products/{sku}",
    response_model=Product,
    summary="Create or replace a product; its URLs must be https on the shop's link_hosts",
    responses=error_responses(ErrorCode.INVALID_MESSAGE, ErrorCode.SHOP_NOT_FOUND, ErrorCode.URL_NOT_ALLOWED),
)
async def put_product(shop: ShopDep, sku: SkuPath, body: ProductBody, state: StateDep) -> Product:
    _same("sku", body.sku, sku)
    product = Product(sku=sku, **body.model_dump(exclude={"sku"}))
    check_product(shop, product)
    if not await state.records.shops.put_product(shop.id, product):
        raise VitrineError(ErrorCode.SHOP_NOT_FOUND, f"no shop {shop.id!r}")
    return product


@router.get(
    "/{shop}/products",
    response_model=list[Product],
    summary="The shop's catalog, by SKU",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_products(shop: ShopDep, state: StateDep) -> list[Product]:
    return await state.records.shops.list_products(shop.id)


@router.get(
    "/{shop}/products/{sku}",
    response_model=Product,
    summary="One product of the shop",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND),
)
async def get_product(shop: ShopDep, sku: str, state: StateDep) -> Product:
    return _found(
        await state.records.shops.get_product(shop.id, sku),
        ErrorCode.PRODUCT_NOT_FOUND,
        f"no product {sku!r} in shop {shop.id!r}",
    )


@router.delete(
    "/{shop}/products/{sku}",
    response_model=Product,
    summary="Remove a product from the catalog",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND),
)
async def delete_product(shop: ShopDep, sku: str, state: StateDep) -> Product:
    return _found(
        await state.records.shops.delete_product(shop.id, sku),
        ErrorCode.PRODUCT_NOT_FOUND,
        f"no product {sku!r} in shop {shop.id!r}",
    )
