"""The consult desk over HTTP and WebSocket.

Public, for the widget on a shop's page: ``GET /v1/consult/{shop}/status`` (CORS for the shop's
embed origins) and the shopper socket ``/v1/consult/shopper``. For agents: the console socket
``/v1/consult/agent``, which logs in with a token that the shop's backend mints at
``POST /v1/shops/{shop}/agents/{agent}/token``. For the shop's backend: call records and the
messages and callback requests left by shoppers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, WebSocket
from pydantic import Field

from signaling.consult.models import CallRecord, ContactRequest
from signaling.consult.protocol import ShopStatus
from signaling.consult.sockets import AgentSession, DeskSession, ShopperSession
from signaling.deps import ApiKeyDep, RuntimeDep
from signaling.runtime import Runtime
from vitrine.core.desk_tokens import mint_desk_token
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import SLUG_PATTERN, Strict
from vitrine.core.records.shops import require_shop

public = APIRouter(prefix="/v1/consult", tags=["consult"])
backend = APIRouter(prefix="/v1/shops", tags=["consult"], dependencies=[ApiKeyDep])

ShopPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="Shop id")]


class AgentToken(Strict):
    token: str
    console_url: str = Field(description="The console; the token goes in the fragment, never to a server log")


@public.get("/{shop}/status", response_model=ShopStatus, summary="Open or closed, and the wait, for the button")
async def shop_status(shop: ShopPath, runtime: RuntimeDep, request: Request, response: Response) -> ShopStatus:
    record = await require_shop(runtime.state.records.shops, shop)
    origin = request.headers.get("origin")
    if origin is not None and origin in record.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "no-store"
    return await runtime.consult.desk.status(shop)


async def _serve(ws: WebSocket, session_type: type[DeskSession]) -> None:
    runtime: Runtime = ws.app.state.runtime
    await ws.accept()
    consult = runtime.consult
    await session_type(ws, runtime.settings, consult.desk, consult.calls).run()


@public.websocket("/shopper")
async def shopper_socket(ws: WebSocket) -> None:
    """The widget's socket; the page's Origin is checked against the shop's once it says which shop."""
    await _serve(ws, ShopperSession)


@public.websocket("/agent")
async def agent_socket(ws: WebSocket) -> None:
    await _serve(ws, AgentSession)


@backend.post("/{shop}/agents/{agent}/token", response_model=AgentToken, summary="Mint an agent's console login token")
async def agent_token(
    shop: str,
    agent: str,
    runtime: RuntimeDep,
    request: Request,
    ttl_s: Annotated[int, Query(ge=60, le=30 * 24 * 3600)] = 12 * 3600,
) -> AgentToken:
    await require_shop(runtime.state.records.shops, shop)
    if await runtime.state.records.shops.get_agent(shop, agent) is None:
        raise VitrineError(ErrorCode.AGENT_NOT_FOUND, f"no agent {agent!r} in shop {shop!r}")
    token = mint_desk_token(runtime.settings, shop=shop, subject=agent, role="agent", ttl_s=ttl_s)
    base = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    return AgentToken(token=token, console_url=f"{base}/agent.html#token={token}")


@backend.get("/{shop}/calls", response_model=list[CallRecord], summary="Call records, newest first")
async def list_calls(
    shop: str, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[CallRecord]:
    await require_shop(runtime.state.records.shops, shop)
    return await runtime.consult.desk.records.calls(shop, limit)


@backend.get("/{shop}/calls/{call}", response_model=CallRecord, summary="One call: times, chat, products, rating")
async def get_call(shop: str, call: str, runtime: RuntimeDep) -> CallRecord:
    await require_shop(runtime.state.records.shops, shop)
    return await runtime.consult.desk.records.require_call(shop, call)


@backend.get(
    "/{shop}/requests",
    response_model=list[ContactRequest],
    summary="Messages and callback bookings left by shoppers, newest first",
)
async def list_requests(
    shop: str,
    runtime: RuntimeDep,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ContactRequest]:
    await require_shop(runtime.state.records.shops, shop)
    return await runtime.consult.desk.records.requests(shop, limit, open_only=open_only)
