"""The consult desk over HTTP and WebSocket.

Public, for the widget on a shop's page: ``GET /v1/consult/{shop}/status`` (CORS for the shop's
embed origins) and the shopper socket ``/v1/consult/shopper``. For agents: the console socket
``/v1/consult/agent``, which logs in with a token that the shop's backend mints at
``POST /v1/shops/{shop}/agents/{agent}/token``. For the shop's backend: call records and the
messages and callback requests left by shoppers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, WebSocket
from pydantic import Field

from signaling.consult.deps import ConsultDep
from signaling.consult.models import CallRecord, ContactRequest
from signaling.consult.protocol import ShopStatus
from signaling.consult.service import ConsultService
from signaling.consult.sockets import AgentSession, DeskSession, ShopperSession
from signaling.deps import ApiKeyDep, PublicBaseDep, SettingsDep, ShopDep, SlugShopDep, StateDep
from vitrine.core.config import Settings
from vitrine.core.desk_tokens import mint_desk_token
from vitrine.core.errors import ErrorCode, VitrineError, error_responses
from vitrine.core.models import Strict

public = APIRouter(prefix="/v1/consult", tags=["consult"])
backend = APIRouter(prefix="/v1/shops", tags=["consult"], dependencies=[ApiKeyDep])


class AgentToken(Strict):
    token: str
    console_url: str = Field(description="The console; the token goes in the fragment, never to a server log")


@public.get(
    "/{shop}/status",
    response_model=ShopStatus,
    summary="Open or closed, and the wait, for the button",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def shop_status(shop: SlugShopDep, consult: ConsultDep, request: Request, response: Response) -> ShopStatus:
    origin = request.headers.get("origin")
    if origin is not None and origin in shop.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "no-store"
    return await consult.desk.status(shop.id)


async def _serve(ws: WebSocket, settings: Settings, consult: ConsultService, session_type: type[DeskSession]) -> None:
    await ws.accept()
    await session_type(ws, settings, consult.desk, consult.calls).run()


@public.websocket("/shopper")
async def shopper_socket(ws: WebSocket, settings: SettingsDep, consult: ConsultDep) -> None:
    """The widget's socket; the page's Origin is checked against the shop's once it says which shop."""
    await _serve(ws, settings, consult, ShopperSession)


@public.websocket("/agent")
async def agent_socket(ws: WebSocket, settings: SettingsDep, consult: ConsultDep) -> None:
    await _serve(ws, settings, consult, AgentSession)


@backend.post(
    "/{shop}/agents/{agent}/token",
    response_model=AgentToken,
    summary="Mint an agent's console login token",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.AGENT_NOT_FOUND),
)
async def agent_token(
    shop: ShopDep,
    agent: str,
    settings: SettingsDep,
    state: StateDep,
    base: PublicBaseDep,
    ttl_s: Annotated[int, Query(ge=60, le=30 * 24 * 3600)] = 12 * 3600,
) -> AgentToken:
    if await state.records.shops.get_agent(shop.id, agent) is None:
        raise VitrineError(ErrorCode.AGENT_NOT_FOUND, f"no agent {agent!r} in shop {shop.id!r}")
    token = mint_desk_token(settings, shop=shop.id, subject=agent, role="agent", ttl_s=ttl_s)
    return AgentToken(token=token, console_url=f"{base}/agent.html#token={token}")


@backend.get(
    "/{shop}/calls",
    response_model=list[CallRecord],
    summary="Call records, newest first",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_calls(
    shop: ShopDep, consult: ConsultDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[CallRecord]:
    return await consult.desk.records.calls(shop.id, limit)


@backend.get(
    "/{shop}/calls/{call}",
    response_model=CallRecord,
    summary="One call: times, chat, products, rating",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.CALL_NOT_FOUND),
)
async def get_call(shop: ShopDep, call: str, consult: ConsultDep) -> CallRecord:
    return await consult.desk.records.require_call(shop.id, call)


@backend.get(
    "/{shop}/requests",
    response_model=list[ContactRequest],
    summary="Messages and callback bookings left by shoppers, newest first",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_requests(
    shop: ShopDep,
    consult: ConsultDep,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ContactRequest]:
    return await consult.desk.records.requests(shop.id, limit, open_only=open_only)
