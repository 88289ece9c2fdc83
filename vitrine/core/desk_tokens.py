"""Desk tokens: an agent's console login and a shopper's ticket, as JWTs with their own audience.

They carry ``aud = "vitrine:desk"``, which ``vitrine.core.auth.verify_token`` refuses (a join token's
``aud`` may only name ``vitrine:join`` or this server), so a desk token can never join a room and a join
token can never log into a desk.
A shop's backend may mint them itself (docs/tokens.md), so the registered claims JWT libraries add
(``jti``, ``nbf``, fractional NumericDates) are accepted here as in join tokens.
"""

from __future__ import annotations

import time
from typing import Literal

import jwt
from pydantic import Field

from vitrine.core.auth import ALGORITHM, NumericDate, decode_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ShopId, Strict

DESK_AUDIENCE = "vitrine:desk"
# host: a live show's seller console, sub = the show id; inspector: an inspection case's console, sub = the case id
DeskRole = Literal["agent", "shopper", "host", "inspector"]


class DeskClaims(Strict):
    iss: str
    aud: str
    sub: str  # the agent id, or the shopper's ticket id
    shop: ShopId
    role: DeskRole
    exp: NumericDate
    iat: NumericDate | None = None
    nbf: NumericDate | None = None
    jti: str | None = Field(default=None, min_length=1, max_length=256)


def mint_desk_token(settings: Settings, *, shop: str, subject: str, role: DeskRole, ttl_s: int) -> str:
    now = int(time.time())
    claims = DeskClaims(
        iss=settings.api_key, aud=DESK_AUDIENCE, sub=subject, shop=shop, role=role, exp=now + ttl_s, iat=now
    )
    return jwt.encode(claims.model_dump(exclude_none=True), settings.secret_bytes, algorithm=ALGORITHM)


def verify_desk_token(settings: Settings, token: str, role: DeskRole) -> DeskClaims:
    """The verified claims of a ``role`` token, or a typed error that never echoes the token."""
    claims = decode_token(settings, token, DeskClaims, audience=DESK_AUDIENCE)
    if claims.role != role:
        raise VitrineError(ErrorCode.PERMISSION_DENIED, f"a {claims.role} token cannot be used as a {role} token")
    return claims
