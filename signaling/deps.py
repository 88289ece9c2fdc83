"""FastAPI dependencies: the runtime, API-key authentication, bearer join tokens."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from signaling.runtime import Runtime
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.errors import ErrorCode, VitrineError


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


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


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
