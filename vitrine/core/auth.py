"""Join tokens: JWT HS256, signed with the API secret.

The room, identity, role and grants a client acts with come only from a
verified token, never from a URL or a message body.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import jwt
from pydantic import BaseModel, ValidationError

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Identity, Role, RoomName, ShopId, Strict

ALGORITHM = "HS256"
C = TypeVar("C", bound=BaseModel)


class JoinClaims(Strict):
    iss: str
    sub: Identity
    room: RoomName
    role: Role
    grants: Grants
    exp: int
    nbf: int | None = None
    iat: int | None = None
    name: str | None = None
    shop: ShopId | None = None  # a shop's token reaches only that shop's rooms; none: rooms of no shop


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
    return decode_token(settings, token, JoinClaims)


def decode_token(
    settings: Settings,
    token: str,
    model: type[C],
    *,
    audience: str | None = None,
    leeway_s: int | None = None,
    expired: VitrineError | None = None,
) -> C:
    """Check a token Vitrine signed (HS256, our issuer, ``exp``; ``aud`` exactly when ``audience`` is given)
    and validate its claims as ``model``. Every failure is a typed error that never echoes the token:
    ``expired`` when it is out of date (``token_expired`` by default), ``invalid_token`` otherwise."""
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
            options={"require": ["exp", "iss", "sub", *(["aud"] if audience else [])]},
        )
        return model.model_validate(payload)
    except jwt.ExpiredSignatureError:
        raise expired or VitrineError(ErrorCode.TOKEN_EXPIRED, "token has expired") from None
    except jwt.PyJWTError as exc:
        raise VitrineError(ErrorCode.INVALID_TOKEN, f"token rejected: {type(exc).__name__}") from None
    except ValidationError:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "token claims are malformed") from None
