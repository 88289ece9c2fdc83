"""Join tokens: JWT HS256, signed with the API secret.

The room, identity, role and grants a client acts with come only from a
verified token, never from a URL or a message body. docs/tokens.md is the claim set.

Shop backends mint these tokens with any JWT library, so the registered claims such
libraries add (``jti``, ``iat``, ``nbf``, an ``aud`` naming this server, fractional
NumericDates) are accepted. Any other unknown claim is still refused: a misspelt optional
claim (``shpo`` for ``shop``) would otherwise silently change what the token reaches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from typing import Annotated, Any, TypeVar

import jwt
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Identity, Role, RoomName, ShopId, Strict

ALGORITHM = "HS256"
# The audience a join token may name; every other token family has its own ("vitrine:desk", ...).
JOIN_AUDIENCE = "vitrine:join"
C = TypeVar("C", bound=BaseModel)


def _whole_seconds(value: object) -> object:
    """RFC 7519 NumericDates may be fractional (``time.time()``); PyJWT has already checked them as numbers."""
    return math.floor(value) if isinstance(value, float) and math.isfinite(value) else value


NumericDate = Annotated[int, BeforeValidator(_whole_seconds)]


class JoinClaims(Strict):
    iss: str
    sub: Identity
    room: RoomName
    role: Role
    grants: Grants
    exp: NumericDate
    nbf: NumericDate | None = None
    iat: NumericDate | None = None
    name: str | None = None
    shop: ShopId | None = None  # a shop's token reaches only that shop's rooms; none: rooms of no shop
    jti: str | None = Field(default=None, min_length=1, max_length=256)  # the minter's own id; not tracked
    aud: str | list[str] | None = None  # checked by ``verify_token`` against ``join_audiences``


def join_audiences(settings: Settings) -> frozenset[str]:
    """What a join token's ``aud`` may name: ``vitrine:join``, the server's public URL, and the configured ones.

    Each names this deployment, so a token minted for another service that shares the secret (or for
    another of Vitrine's token families) is refused rather than taken as a join token.
    """
    public = [settings.public_url.rstrip("/")] if settings.public_url else []
    return frozenset([JOIN_AUDIENCE, *public, *settings.token_audiences])


def mint_token(
    settings: Settings,
    *,
    room: str,
    identity: str,
    role: Role,
    grants: Grants | None = None,
    ttl_s: int | None = None,
    name: str | None = None,
    shop: str | None = None,
) -> str:
    """Sign a join token. Grants default to the role's defaults."""
    now = int(time.time())
    claims = JoinClaims(
        iss=settings.api_key,
        sub=identity,
        room=room,
        role=role,
        grants=grants if grants is not None else ROLE_DEFAULT_GRANTS[role],
        exp=now + (ttl_s if ttl_s is not None else settings.token_default_ttl_s),
        nbf=now,
        iat=now,
        name=name,
        shop=shop,
    )
    return jwt.encode(claims.model_dump(exclude_none=True), settings.secret_bytes, algorithm=ALGORITHM)


def verify_token(settings: Settings, token: str) -> JoinClaims:
    """Return the verified claims or raise a typed error. Never echoes the token."""
    return decode_token(settings, token, JoinClaims, optional_audiences=join_audiences(settings))


def decode_token(
    settings: Settings,
    token: str,
    model: type[C],
    *,
    audience: str | None = None,
    optional_audiences: Collection[str] = (),
    leeway_s: int | None = None,
    expired: VitrineError | None = None,
) -> C:
    """Check a token Vitrine signed (HS256, our issuer, ``exp``) and validate its claims as ``model``.

    ``aud`` is required and must be ``audience`` when that is given; otherwise it may be absent, or name one
    of ``optional_audiences``. Every failure is a typed error that never echoes the token: ``expired`` when it
    is out of date (``token_expired`` by default), ``invalid_token`` otherwise."""
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "missing or malformed token")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            settings.secret_bytes,
            algorithms=[ALGORITHM],
            issuer=settings.api_key,
            audience=audience,
            leeway=settings.token_leeway_s if leeway_s is None else leeway_s,
            options={
                "require": ["exp", "iss", "sub", *(["aud"] if audience else [])],
                "verify_aud": audience is not None or not optional_audiences,
            },
        )
        if audience is None and optional_audiences and "aud" in payload:
            _check_optional_audience(payload["aud"], optional_audiences)
        return model.model_validate(payload)
    except jwt.ExpiredSignatureError:
        raise expired or VitrineError(ErrorCode.TOKEN_EXPIRED, "token has expired") from None
    except jwt.PyJWTError as exc:
        raise VitrineError(ErrorCode.INVALID_TOKEN, f"token rejected: {type(exc).__name__}") from None
    except ValidationError:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "token claims are malformed") from None


def _check_optional_audience(claim: object, accepted: Collection[str]) -> None:
    """RFC 7519 4.1.3: a string or a list of strings, one of which must name us. An empty one names nobody."""
    names = [claim] if isinstance(claim, str) else claim
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise jwt.InvalidAudienceError("malformed audience")
    if not any(name in accepted for name in names):
        raise jwt.InvalidAudienceError("audience does not name this server")
