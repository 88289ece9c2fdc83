"""Inspection cases over HTTP: the shop's backend opens cases and gets the buyer's one-time link;
the buyer's phone redeems the link, once.

The link is ``<public URL>/inspect.html#t=<token>``: the token rides in the fragment, so it never
reaches a server or proxy log, and the page sends it in a POST body.
"""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Request
from pydantic import Field

from signaling.deps import ApiKeyDep, RuntimeDep
from signaling.runtime import Runtime
from vitrine.inspect.models import Case, CaseSetup, CaseView
from vitrine.models import Strict
from vitrine.state.shops import require_shop

backend = APIRouter(prefix="/v1/shops/{shop}/cases", tags=["inspection"], dependencies=[ApiKeyDep])
public = APIRouter(prefix="/v1/inspect", tags=["inspection"])


class CaseLink(Strict):
    case: CaseView
    link: str = Field(description="The buyer's one-time link; the token is in the fragment")
    qr_svg: str = Field(description="The link as a QR code, an SVG document")


class Redeem(Strict):
    token: str = Field(max_length=4096)


class BuyerSession(Strict):
    """What the buyer's page gets for a valid link: the case as the buyer may see it, and a session token."""

    case_id: str
    shop_name: str
    order_ref: str
    language: str
    token: str


def _link(runtime: Runtime, request: Request, case: Case, token: str) -> CaseLink:
    base = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    link = f"{base}/inspect.html#t={token}"
    svg = io.BytesIO()
    segno.make(link, error="m").save(svg, kind="svg", scale=4, border=2, title="Inspection link")
    return CaseLink(case=case.view(), link=link, qr_svg=svg.getvalue().decode())


@backend.post("", status_code=201, response_model=CaseLink, summary="Open an inspection case and get its link")
async def open_case(shop: str, body: CaseSetup, runtime: RuntimeDep, request: Request) -> CaseLink:
    case, token = await runtime.cases.open(shop, body)
    return _link(runtime, request, case, token)


@backend.get("", response_model=list[CaseView], summary="The shop's cases, newest first")
async def list_cases(shop: str, runtime: RuntimeDep,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[CaseView]:
    return [case.view() for case in await runtime.cases.recent(shop, limit)]


@backend.get("/{case}", response_model=CaseView, summary="One case")
async def get_case(shop: str, case: str, runtime: RuntimeDep) -> CaseView:
    await require_shop(runtime.state.shops, shop)
    return (await runtime.cases.get(shop, case)).view()


@backend.post("/{case}/link", response_model=CaseLink, summary="A new link for the buyer (the old one stops working)")
async def new_link(shop: str, case: str, runtime: RuntimeDep, request: Request) -> CaseLink:
    record, token = await runtime.cases.new_link(shop, case)
    return _link(runtime, request, record, token)


@public.post("/redeem", response_model=BuyerSession, summary="Spend a one-time link (the buyer's phone)")
async def redeem(body: Redeem, runtime: RuntimeDep) -> BuyerSession:
    case, token = await runtime.cases.redeem(body.token)
    shop = await require_shop(runtime.state.shops, case.shop)
    return BuyerSession(case_id=case.id, shop_name=shop.name, order_ref=case.order_ref, language=case.language,
                        token=token)
