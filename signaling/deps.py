"""FastAPI dependencies: the parts of the runtime the spine's routes use, the public base URL, API-key
authentication, bearer join tokens, and the shop a path names.

The runtime (``signaling/runtime.py``) imports every product, and the products' routes use these, so nothing here
imports it: each dependency reads one part of it from the app (``runtime_of``), typed as that part. Each product
reads its own services the same way (``signaling/<product>/deps.py``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from signaling.hub import SessionHub
from signaling.local_media import RunningMedia
from signaling.rooms import RoomService
from signaling.state import State
from signaling.worker_link import WorkerLink
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.config import Settings
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


API_KEY_SCHEME = "ApiKey"  # each scheme's name in the OpenAPI document (else the class's: one for every bearer)
_basic = _LenientBasic(
    auto_error=False, scheme_name=API_KEY_SCHEME, description="API key as the user name, API secret as the password"
)
_bearer = HTTPBearer(auto_error=False, scheme_name="JoinToken", description="A join token")
_page_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PageToken",
    description="A console token (live show, inspection case) or a buyer's inspection session token",
)

T = TypeVar("T")


def runtime_of(connection: HTTPConnection) -> Any:
    """The app's runtime, for HTTP routes and WebSocket routes alike; untyped, as only its builder may import it."""
    return connection.app.state.runtime


def runtime_part(name: str, kind: type[T]) -> Callable[[HTTPConnection], T]:
    """A dependency giving the runtime's part ``name``, checked to be a ``kind``: a wiring mistake fails the
    request loudly instead of reaching a handler as the wrong object."""

    def part(connection: HTTPConnection) -> T:
        value = getattr(runtime_of(connection), name)
        if not isinstance(value, kind):
            raise TypeError(f"runtime.{name} is a {type(value).__name__}, not a {kind.__name__}")
        return value

    part.__name__ = f"runtime_{name}"
    return part


def _link(connection: HTTPConnection) -> WorkerLink:
    """The way to the media workers (a Protocol: ``runtime_part`` cannot check it)."""
    link: WorkerLink = runtime_of(connection).link
    return link


def _local_media(connection: HTTPConnection) -> RunningMedia | None:
    """The media workers this server started itself (in its process, or worker processes), if it did."""
    media: RunningMedia | None = runtime_of(connection).worker
    return media


ShopDeletion = Callable[[str], Awaitable[Shop | None]]


def _shop_deletion(connection: HTTPConnection) -> ShopDeletion:
    """Deleting a shop deletes what every product keeps of it, so it is the runtime's, where the products meet."""
    delete: ShopDeletion = runtime_of(connection).delete_shop
    return delete


SettingsDep = Annotated[Settings, Depends(runtime_part("settings", Settings))]
StateDep = Annotated[State, Depends(runtime_part("state", State))]
RoomsDep = Annotated[RoomService, Depends(runtime_part("rooms", RoomService))]
HubDep = Annotated[SessionHub, Depends(runtime_part("hub", SessionHub))]
LinkDep = Annotated[WorkerLink, Depends(_link)]
LocalMediaDep = Annotated[RunningMedia | None, Depends(_local_media)]
ShopDeletionDep = Annotated[ShopDeletion, Depends(_shop_deletion)]


def public_base(settings: SettingsDep, request: Request) -> str:
    """This server's public URL, no trailing slash: ``VITRINE_PUBLIC_URL``, else the URL the request came in on."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


PublicBaseDep = Annotated[str, Depends(public_base)]


def require_api_key(
    settings: SettingsDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> None:
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "API key and secret required (HTTP Basic)")
    key_ok = hmac.compare_digest(credentials.username.encode(), settings.api_key.encode())
    secret_ok = hmac.compare_digest(credentials.password.encode(), settings.secret_bytes)
    if not (key_ok and secret_ok):
        raise VitrineError(ErrorCode.INVALID_TOKEN, "wrong API key or secret")


ApiKeyDep = Depends(require_api_key)


def bearer_claims(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> JoinClaims:
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "Authorization: Bearer <join token> required")
    return verify_token(settings, credentials.credentials)


ClaimsDep = Annotated[JoinClaims, Depends(bearer_claims)]


def page_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_page_bearer)]) -> str:
    """The bearer token a console or a buyer's page sends; each route checks it for its own audience."""
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "Authorization: Bearer <token> required")
    return credentials.credentials


PageTokenDep = Annotated[str, Depends(page_token)]


async def shop_of_path(shop: Annotated[str, Path(description="Shop id")], state: StateDep) -> Shop:
    """The shop the path's ``{shop}`` names, or ``404 shop_not_found``.

    Declare it after the router's API-key dependency (a router's ``dependencies`` always run first), so a
    caller without the API key learns nothing of which shops exist. Like any dependency it runs before the
    handler's own query and body parameters are validated."""
    return await require_shop(state.records.shops, shop)


ShopDep = Annotated[Shop, Depends(shop_of_path)]


async def slug_shop_of_path(
    shop: Annotated[str, Path(pattern=SLUG_PATTERN, description="Shop id")], state: StateDep
) -> Shop:
    """``shop_of_path`` for public routes, where an id that is not a slug is ``422 invalid_message``, unlooked-up."""
    return await shop_of_path(shop, state)


SlugShopDep = Annotated[Shop, Depends(slug_shop_of_path)]
