"""A small synchronous client for the REST API a shop's backend calls (README "REST API").

It authenticates with HTTP Basic (``api_key``:``api_secret``) and turns every error answer
(``{"code", "message"}``) into a ``VitrineAPIError`` subclass picked by HTTP status, so callers can catch
``NotFoundError`` or switch on ``code``. Records come back as the server's JSON (dicts): the OpenAPI schema
at ``/openapi.json`` describes them. It is synchronous, since most shop backends are; an asyncio app calls
it in a thread (``asyncio.to_thread``). The secret is never part of a repr, an exception or a log line.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal, TypedDict, cast
from urllib.parse import quote

import httpx

from vitrine_server_sdk.tokens import (
    DEFAULT_CONSOLE_TTL_S,
    DEFAULT_JOIN_TTL_S,
    ConsoleRole,
    Grants,
    Role,
    mint_console_token,
    mint_join_token,
)

RoomKind = Literal["consult", "inspection", "live"]
Json = dict[str, Any]


class JoinToken(TypedDict):
    token: str
    ws_url: str


class ConsoleLogin(TypedDict):
    token: str
    console_url: str  # the token rides in its fragment, which browsers never send to a server


class WebhookKey(TypedDict):
    key: str
    version: int


class VitrineError(Exception):
    """Anything this SDK raises about talking to Vitrine."""


class VitrineConnectionError(VitrineError):
    """The server could not be reached, or did not answer in time."""


class VitrineAPIError(VitrineError):
    """An error answer: ``status`` (HTTP), ``code`` (stable, from the server's ``ErrorCode``) and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class InvalidRequestError(VitrineAPIError):
    """400, 413 or 422: the request was refused as it stands (``invalid_message``, ``url_not_allowed``...)."""


class AuthenticationError(VitrineAPIError):
    """401: wrong API key or secret (``invalid_token``)."""


class PermissionDeniedError(VitrineAPIError):
    """403."""


class NotFoundError(VitrineAPIError):
    """404: ``shop_not_found``, ``room_not_found``, ``agent_not_found``..."""


class ConflictError(VitrineAPIError):
    """409: ``shop_exists``, ``room_exists``, ``show_ended``..."""


class GoneError(VitrineAPIError):
    """410: an inspection link that expired or was used."""


class RateLimitedError(VitrineAPIError):
    """429."""


class ServerError(VitrineAPIError):
    """5xx: ``no_media_worker``, ``storage_unavailable`` (retry later), ``internal``."""


_BY_STATUS: dict[int, type[VitrineAPIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def _error(response: httpx.Response) -> VitrineAPIError:
    status = response.status_code
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):  # not Vitrine's error body: a proxy's page, say
        code, message = f"http_{status}", response.reason_phrase or "unexpected answer"
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else VitrineAPIError)
    return kind(status, code, message)


def _seg(value: str) -> str:
    """One path segment: an id can never reach another route (``../``) or carry a query."""
    return quote(value, safe="")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class Vitrine:
    """The REST API of one Vitrine server, and token minting with its credentials.

    ``Vitrine(url, api_key=..., api_secret=...)``; use it as a context manager, or call ``close()``.
    ``transport`` is httpx's, for tests or proxies.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        api_secret: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_secret:
            raise ValueError("api_secret is empty")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._secret = api_secret
        self._http = httpx.Client(base_url=self.url, auth=(api_key, api_secret), timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"Vitrine({self.url!r}, api_key={self.api_key!r})"

    def __enter__(self) -> Vitrine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One API call: the decoded JSON answer, or a ``VitrineAPIError``. For routes without a method here."""
        response = self._send(method, path, json=json, params=params)
        return response.json() if response.content else None

    def _send(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json, params=_drop_none(params or {}))
        except httpx.TransportError as exc:  # the type only: its text could name a proxy's credentials
            raise VitrineConnectionError(f"{method} {path}: {type(exc).__name__}") from None
        if response.is_error:
            raise _error(response)
        return response

    # -- tokens ---------------------------------------------------------------------------------------------

    def join_token(
        self,
        *,
        room: str,
        identity: str,
        role: Role,
        grants: Grants | None = None,
        room_create: bool = False,
        ttl_s: int = DEFAULT_JOIN_TTL_S,
        name: str | None = None,
        shop: str | None = None,
        audience: str | None = None,
    ) -> str:
        """A join token minted here, offline (``mint_join_token``): no request."""
        return mint_join_token(
            api_key=self.api_key,
            api_secret=self._secret,
            room=room,
            identity=identity,
            role=role,
            grants=grants,
            room_create=room_create,
            ttl_s=ttl_s,
            name=name,
            shop=shop,
            audience=audience,
        )

    def console_token(self, *, shop: str, role: ConsoleRole, subject: str, ttl_s: int = DEFAULT_CONSOLE_TTL_S) -> str:
        """A console login minted offline; the routes below also check that the agent, show or case exists."""
        return mint_console_token(
            api_key=self.api_key, api_secret=self._secret, shop=shop, role=role, subject=subject, ttl_s=ttl_s
        )

    def create_token(
        self,
        *,
        room: str,
        identity: str,
        role: Role,
        grants: Grants | None = None,
        ttl_s: int | None = None,
        name: str | None = None,
        shop: str | None = None,
    ) -> JoinToken:
        """``POST /v1/tokens``: a join token minted by the server, with the WebSocket URL to use it on."""
        body = _drop_none(
            {"room": room, "identity": identity, "role": role, "grants": grants, "ttl_s": ttl_s, "name": name}
            | {"shop": shop}
        )
        return cast(JoinToken, self.request("POST", "/v1/tokens", json=body))

    # -- rooms ----------------------------------------------------------------------------------------------

    def create_room(
        self, name: str, *, kind: RoomKind = "consult", max_participants: int | None = None, shop: str | None = None
    ) -> Json:
        body = _drop_none({"name": name, "kind": kind, "max_participants": max_participants, "shop": shop})
        return cast(Json, self.request("POST", "/v1/rooms", json=body))

    def list_rooms(self) -> list[Json]:
        return cast(list[Json], self.request("GET", "/v1/rooms"))

    def get_room(self, name: str) -> Json:
        """``{room, participants, tracks}``."""
        return cast(Json, self.request("GET", f"/v1/rooms/{_seg(name)}"))

    def close_room(self, name: str) -> None:
        self._send("DELETE", f"/v1/rooms/{_seg(name)}")

    # -- shops, agents, products ----------------------------------------------------------------------------

    def create_shop(self, shop_id: str, *, name: str, **settings: Any) -> Json:
        """``settings``: allowed_origins, link_hosts, timezone, opening_hours, languages, webhook_url, ..."""
        return cast(Json, self.request("POST", "/v1/shops", json={"id": shop_id, "name": name, **settings}))

    def list_shops(self) -> list[Json]:
        return cast(list[Json], self.request("GET", "/v1/shops"))

    def get_shop(self, shop: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}"))

    def update_shop(self, shop: str, **changes: Any) -> Json:
        return cast(Json, self.request("PATCH", f"/v1/shops/{_seg(shop)}", json=changes))

    def delete_shop(self, shop: str) -> None:
        self._send("DELETE", f"/v1/shops/{_seg(shop)}")

    def shop_hours(self, shop: str, *, at: str | None = None) -> Json:
        """Open now (or at ``at``, an aware ISO 8601 time), and when it next opens."""
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/hours", params={"at": at}))

    def put_agent(self, shop: str, agent: str, *, display_name: str, languages: list[str], **fields: Any) -> Json:
        body = {"display_name": display_name, "languages": languages, **fields}
        return cast(Json, self.request("PUT", f"/v1/shops/{_seg(shop)}/agents/{_seg(agent)}", json=body))

    def get_agent(self, shop: str, agent: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/agents/{_seg(agent)}"))

    def list_agents(self, shop: str) -> list[Json]:
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/agents"))

    def delete_agent(self, shop: str, agent: str) -> None:
        self._send("DELETE", f"/v1/shops/{_seg(shop)}/agents/{_seg(agent)}")

    def put_product(self, shop: str, sku: str, **product: Any) -> Json:
        """``product``: title, price (a decimal string), currency, url, image_url... (https, on link_hosts)."""
        return cast(Json, self.request("PUT", f"/v1/shops/{_seg(shop)}/products/{_seg(sku)}", json=product))

    def get_product(self, shop: str, sku: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/products/{_seg(sku)}"))

    def list_products(self, shop: str) -> list[Json]:
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/products"))

    def delete_product(self, shop: str, sku: str) -> None:
        self._send("DELETE", f"/v1/shops/{_seg(shop)}/products/{_seg(sku)}")

    # -- consult --------------------------------------------------------------------------------------------

    def agent_console(self, shop: str, agent: str, *, ttl_s: int | None = None) -> ConsoleLogin:
        """An agent's console login, minted by the server once it has checked the agent exists."""
        path = f"/v1/shops/{_seg(shop)}/agents/{_seg(agent)}/token"
        return cast(ConsoleLogin, self.request("POST", path, params={"ttl_s": ttl_s}))

    def list_calls(self, shop: str, *, limit: int | None = None) -> list[Json]:
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/calls", params={"limit": limit}))

    def get_call(self, shop: str, call: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/calls/{_seg(call)}"))

    def list_requests(self, shop: str, *, open_only: bool = False, limit: int | None = None) -> list[Json]:
        """Messages and callback bookings shoppers left."""
        params = {"open": "true" if open_only else None, "limit": limit}
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/requests", params=params))

    # -- live shows -----------------------------------------------------------------------------------------

    def create_show(
        self, shop: str, *, title: str, products: list[str] | None = None, scheduled_at_ms: int | None = None
    ) -> Json:
        body = _drop_none({"title": title, "products": products, "scheduled_at_ms": scheduled_at_ms})
        return cast(Json, self.request("POST", f"/v1/shops/{_seg(shop)}/shows", json=body))

    def list_shows(self, shop: str, *, limit: int | None = None) -> list[Json]:
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/shows", params={"limit": limit}))

    def get_show(self, shop: str, show: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}"))

    def update_show(self, shop: str, show: str, **changes: Any) -> Json:
        return cast(Json, self.request("PATCH", f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}", json=changes))

    def delete_show(self, shop: str, show: str) -> None:
        self._send("DELETE", f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}")

    def end_show(self, shop: str, show: str) -> Json:
        return cast(Json, self.request("POST", f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}/end"))

    def show_console(self, shop: str, show: str, *, ttl_s: int | None = None) -> ConsoleLogin:
        """The seller's console login for the show."""
        path = f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}/console"
        return cast(ConsoleLogin, self.request("POST", path, params={"ttl_s": ttl_s}))

    def show_analytics(self, shop: str, show: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/shows/{_seg(show)}/analytics"))

    # -- inspection cases -----------------------------------------------------------------------------------

    def create_case(
        self,
        shop: str,
        *,
        order_ref: str,
        claim: str,
        language: str | None = None,
        buyer_ref: str | None = None,
        link_ttl_s: int | None = None,
    ) -> Json:
        """``{case, link, qr_svg}``: send the buyer ``link``; it works once."""
        body = _drop_none(
            {"order_ref": order_ref, "claim": claim, "language": language, "buyer_ref": buyer_ref}
            | {"link_ttl_s": link_ttl_s}
        )
        return cast(Json, self.request("POST", f"/v1/shops/{_seg(shop)}/cases", json=body))

    def list_cases(self, shop: str, *, limit: int | None = None) -> list[Json]:
        return cast(list[Json], self.request("GET", f"/v1/shops/{_seg(shop)}/cases", params={"limit": limit}))

    def get_case(self, shop: str, case: str) -> Json:
        return cast(Json, self.request("GET", f"/v1/shops/{_seg(shop)}/cases/{_seg(case)}"))

    def new_case_link(self, shop: str, case: str) -> Json:
        """A new one-time link; the old one stops working."""
        return cast(Json, self.request("POST", f"/v1/shops/{_seg(shop)}/cases/{_seg(case)}/link"))

    def case_console(self, shop: str, case: str, *, ttl_s: int | None = None) -> ConsoleLogin:
        """The inspector's console login for the case."""
        path = f"/v1/shops/{_seg(shop)}/cases/{_seg(case)}/console"
        return cast(ConsoleLogin, self.request("POST", path, params={"ttl_s": ttl_s}))

    def case_bundle(self, shop: str, case: str) -> bytes:
        """The signed evidence bundle (a zip): check it offline with ``vitrine verify``."""
        return self._send("GET", f"/v1/shops/{_seg(shop)}/cases/{_seg(case)}/bundle").content

    def erase_buyer(self, shop: str, buyer_ref: str) -> Json:
        return cast(Json, self.request("DELETE", f"/v1/shops/{_seg(shop)}/buyers/{_seg(buyer_ref)}"))

    # -- webhooks -------------------------------------------------------------------------------------------

    def webhook_key(self, shop: str) -> WebhookKey:
        """The key that signs the shop's webhooks: give it to ``verify_webhook``."""
        return cast(WebhookKey, self.request("GET", f"/v1/shops/{_seg(shop)}/webhook-key"))

    def rotate_webhook_key(self, shop: str) -> WebhookKey:
        return cast(WebhookKey, self.request("POST", f"/v1/shops/{_seg(shop)}/webhook-key/rotate"))

    def webhook_failures(self, shop: str, *, limit: int | None = None) -> list[Json]:
        path = f"/v1/shops/{_seg(shop)}/webhook-failures"
        return cast(list[Json], self.request("GET", path, params={"limit": limit}))
