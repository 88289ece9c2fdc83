"""Join and console tokens, minted offline with the API secret (docs/tokens.md is the claim set).

Minting here saves a round trip per shopper: a backend that holds ``VITRINE_API_SECRET`` signs the same
HS256 JWTs the server would (``POST /v1/tokens``, the console routes). The grant table mirrors the
server's, so a token minted here means exactly what the REST API's would.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal, TypedDict, get_args

import jwt

ALGORITHM = "HS256"
JOIN_AUDIENCE = "vitrine:join"
CONSOLE_AUDIENCE = "vitrine:desk"
DEFAULT_JOIN_TTL_S = 6 * 3600
DEFAULT_CONSOLE_TTL_S = 12 * 3600

Role = Literal["customer", "agent", "buyer", "inspector", "host", "viewer"]
# agent: a consult agent (subject: the agent id); host: a live show's seller (the show id);
# inspector: an inspection case's console (the case id).
ConsoleRole = Literal["agent", "host", "inspector"]


class Grants(TypedDict, total=False):
    """What a join token allows; a grant left out is denied."""

    can_publish: bool
    can_subscribe: bool
    can_chat: bool
    room_admin: bool
    hidden: bool
    room_create: bool
    needs_admit: bool


ROLE_DEFAULT_GRANTS: dict[str, Grants] = {
    "customer": {"can_publish": True, "can_subscribe": True, "can_chat": True},
    "agent": {"can_publish": True, "can_subscribe": True, "can_chat": True, "room_admin": True},
    "buyer": {"can_publish": True, "can_subscribe": True, "can_chat": True},
    "inspector": {"can_publish": True, "can_subscribe": True, "can_chat": True, "room_admin": True},
    "host": {"can_publish": True, "can_subscribe": True, "can_chat": True, "room_admin": True},
    "viewer": {"can_subscribe": True, "can_chat": True, "hidden": True},
}
GRANT_NAMES = frozenset(Grants.__annotations__)


def _sign(api_secret: str, claims: dict[str, Any]) -> str:
    if not api_secret:
        raise ValueError("api_secret is empty: a token signed with it could be forged by anyone")
    return jwt.encode(claims, api_secret, algorithm=ALGORITHM)


def mint_join_token(
    *,
    api_key: str,
    api_secret: str,
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
    """A join token for ``/v1/rtc``, WHIP and WHEP.

    ``grants`` replaces the role's defaults; ``room_create`` adds the one grant defaults never have (the first
    join creates the room). ``audience`` sets ``aud`` (``vitrine:join``, or the server's public URL); servers
    before the claim set was relaxed refuse any ``aud``, so it is off by default.
    """
    if role not in ROLE_DEFAULT_GRANTS:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLE_DEFAULT_GRANTS)}")
    chosen: dict[str, object] = {**(ROLE_DEFAULT_GRANTS[role] if grants is None else grants)}
    unknown = set(chosen) - GRANT_NAMES
    if unknown:
        raise ValueError(f"unknown grants: {', '.join(sorted(unknown))}")
    if room_create:
        chosen["room_create"] = True
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": api_key,
        "sub": identity,
        "room": room,
        "role": role,
        "grants": chosen,
        "exp": now + ttl_s,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_urlsafe(12),
    }
    optional = {"name": name, "shop": shop, "aud": audience}
    claims.update({key: value for key, value in optional.items() if value is not None})
    return _sign(api_secret, claims)


def mint_console_token(
    *,
    api_key: str,
    api_secret: str,
    shop: str,
    role: ConsoleRole,
    subject: str,
    ttl_s: int = DEFAULT_CONSOLE_TTL_S,
) -> str:
    """A console login: an agent's (``subject`` = the agent id), a show's host (the show id) or a case's
    inspector (the case id). Unlike the REST routes (``Vitrine.agent_console`` ...), nothing checks here
    that the agent, show or case exists: the console refuses the token when it does not."""
    if role not in get_args(ConsoleRole):
        raise ValueError(f"unknown console role {role!r}: one of {', '.join(get_args(ConsoleRole))}")
    now = int(time.time())
    claims = {
        "iss": api_key,
        "aud": CONSOLE_AUDIENCE,
        "sub": subject,
        "shop": shop,
        "role": role,
        "exp": now + ttl_s,
        "iat": now,
    }
    return _sign(api_secret, claims)
