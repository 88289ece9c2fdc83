"""Inspection links: a case's one-time, expiring token, and the buyer's session token it turns into.

Both are JWTs signed with the API secret, each with its own audience, which ``verify_token`` (joins)
and ``verify_desk_token`` (consoles) refuse, so neither opens anything else. A link carries the
case's current nonce as ``jti``: a new link changes the nonce, so the old one stops working, and
redeeming it records its use, so it works once. Its expiry is checked without leeway: "valid for
60 minutes" means 60.
"""

from __future__ import annotations

import time

import jwt

from vitrine.auth import ALGORITHM, decode_token
from vitrine.config import Settings
from vitrine.errors import ErrorCode, VitrineError
from vitrine.inspect.models import Case
from vitrine.models import ShopId, Strict

LINK_AUDIENCE = "vitrine:inspect-link"
BUYER_AUDIENCE = "vitrine:inspect-buyer"
BUYER_SESSION_S = 4 * 3600


class CaseClaims(Strict):
    iss: str
    aud: str
    sub: str  # the case id
    shop: ShopId
    jti: str | None = None  # a link's nonce
    exp: int
    iat: int | None = None


def _mint(settings: Settings, audience: str, case: Case, exp: int, jti: str | None = None) -> str:
    claims = CaseClaims(iss=settings.api_key, aud=audience, sub=case.id, shop=case.shop, jti=jti, exp=exp,
                        iat=int(time.time()))
    return jwt.encode(claims.model_dump(exclude_none=True), settings.secret_bytes, algorithm=ALGORITHM)


def mint_link_token(settings: Settings, case: Case) -> str:
    return _mint(settings, LINK_AUDIENCE, case, case.link_expires_at_ms // 1000, case.link_nonce)


def mint_buyer_token(settings: Settings, case: Case) -> str:
    return _mint(settings, BUYER_AUDIENCE, case, int(time.time()) + BUYER_SESSION_S)


def verify_case_token(settings: Settings, token: str, audience: str) -> CaseClaims:
    """The claims, or a typed error that never echoes the token (``link_expired`` for an old link)."""
    return decode_token(settings, token, CaseClaims, audience=audience, leeway_s=0, expired=VitrineError(
        ErrorCode.LINK_EXPIRED, "this link has expired: ask the seller for a new one"))
