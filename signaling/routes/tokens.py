"""Join tokens, minted for a shop's backend. Authenticated with the API key and secret."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from signaling.deps import ApiKeyDep, PublicBaseDep, SettingsDep, StateDep
from vitrine.core.auth import mint_token
from vitrine.core.errors import ErrorCode, error_responses
from vitrine.core.models import Grants, Identity, Role, RoomName, ShopId, Strict
from vitrine.core.records.shops import require_shop

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], dependencies=[ApiKeyDep])


class TokenRequest(Strict):
    room: RoomName
    identity: Identity
    role: Role
    grants: Grants | None = None
    ttl_s: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    name: str | None = Field(default=None, max_length=128)
    shop: ShopId | None = Field(default=None, description="Scope the token to this shop's rooms")


class TokenResponse(Strict):
    token: str
    ws_url: str


@router.post(
    "", response_model=TokenResponse, summary="Mint a join token", responses=error_responses(ErrorCode.SHOP_NOT_FOUND)
)
async def create_token(
    body: TokenRequest, settings: SettingsDep, state: StateDep, base: PublicBaseDep
) -> TokenResponse:
    if body.shop is not None:  # the body names it, not the path: checked here, once the body is valid
        await require_shop(state.records.shops, body.shop)
    token = mint_token(
        settings,
        room=body.room,
        identity=body.identity,
        role=body.role,
        grants=body.grants,
        ttl_s=body.ttl_s,
        name=body.name,
        shop=body.shop,
    )
    ws_base = "wss://" + base[len("https://") :] if base.startswith("https://") else "ws://" + base.split("://", 1)[-1]
    return TokenResponse(token=token, ws_url=ws_base + "/v1/rtc")
