"""FastAPI dependencies: the runtime, the public base URL, API-key authentication, bearer join tokens, and the
shop a path names."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from signaling.runtime import Runtime
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import SLUG_PATTERN
from vitrine.core.records.shops import require_shop
from vitrine.core.shops import Shop


class _LenientBasic(HTTPBasic):
    """HTTP Basic that reports a malformed header as missing, so it gets our typed 401."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:
            return None


_basic = _LenientBasic(auto_error=False, description="API key as the user name, API secret as the password")
_bearer = HTTPBearer(auto_error=False, description="A join token")
_page_bearer = HTTPBearer(
    auto_error=False, description="A console token (live show, inspection case) or a buyer's inspection session token"
)


def get_runtime(connection: HTTPConnection) -> Runtime:
    """The app's runtime, for HTTP routes and WebSocket routes alike."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def public_base(runtime: RuntimeDep, request: Request) -> str:
    """This server's public URL, no trailing slash: ``VITRINE_PUBLIC_URL``, else the URL the request came in on."""
    return (runtime.settings.public_url or str(request.base_url)).rstrip("/")


PublicBaseDep = Annotated[str, Depends(public_base)]


def require_api_key(runtime: RuntimeDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> None:
    settings = runtime.settings
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "API key and secret required (HTTP Basic)")
    key_ok = hmac.compare_digest(credentials.username.encode(), settings.api_key.encode())
    secret_ok = hmac.compare_digest(credentials.password.encode(), settings.secret_bytes)
    if not (key_ok and secret_ok):
        raise VitrineError(ErrorCode.INVALID_TOKEN, "wrong API key or secret")


ApiKeyDep = Depends(require_api_key)


def bearer_claims(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> JoinClaims:
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "Authorization: Bearer <join token> required")
    return verify_token(runtime.settings, credentials.credentials)


ClaimsDep = Annotated[JoinClaims, Depends(bearer_claims)]


def page_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_page_bearer)]) -> str:
    """The bearer token a console or a buyer's page sends; each route checks it for its own audience."""
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "Authorization: Bearer <token> required")
    return credentials.credentials


PageTokenDep = Annotated[str, Depends(page_token)]


async def shop_of_path(shop: Annotated[str, Path(description="Shop id")], runtime: RuntimeDep) -> Shop:
    """The shop the path's ``{shop}`` names, or ``404 shop_not_found``.

    Declare it after the router's API-key dependency (a router's ``dependencies`` always run first), so a
    caller without the API key learns nothing of which shops exist. Like any dependency it runs before the
    handler's own query and body parameters are validated."""
    return await require_shop(runtime.state.records.shops, shop)


ShopDep = Annotated[Shop, Depends(shop_of_path)]


async def slug_shop_of_path(
    shop: Annotated[str, Path(pattern=SLUG_PATTERN, description="Shop id")], runtime: RuntimeDep
) -> Shop:
    """``shop_of_path`` for public routes, where an id that is not a slug is ``422 invalid_message``, unlooked-up."""
    return await shop_of_path(shop, runtime)


SlugShopDep = Annotated[Shop, Depends(slug_shop_of_path)]
