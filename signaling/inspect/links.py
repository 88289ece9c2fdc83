"""Inspection links: a case's one-time, expiring token, and the buyer's session token it turns into.

Both are JWTs signed with the API secret, each with its own audience, which ``verify_token`` (joins)
and ``verify_desk_token`` (consoles) refuse, so neither opens anything else. A link carries the
case's current nonce as ``jti``: a new link changes the nonce, so the old one stops working, and
redeeming it records its use, so it works once. Its expiry is checked without leeway: "valid for
60 minutes" means 60.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

from vitrine.core.auth import ALGORITHM, decode_token, mint_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role, ShopId, Strict
from vitrine.core.wire.inspect import Case, inspect_room

LINK_AUDIENCE = "vitrine:inspect-link"
BUYER_AUDIENCE = "vitrine:inspect-buyer"
BUYER_SESSION_S = 4 * 3600
JOIN_TTL_S = 2 * 3600


def buyer_identity(case_id: str) -> str:
    return "buyer-" + case_id


def inspector_identity(case_id: str) -> str:
    return "inspector-" + case_id


class CaseClaims(Strict):
    iss: str
    aud: str
    sub: str  # the case id
    shop: ShopId
    jti: str | None = None  # a link's nonce
    exp: int
    iat: int | None = None


def _mint(settings: Settings, audience: str, case: Case, exp: int, jti: str | None = None) -> str:
    claims = CaseClaims(
        iss=settings.api_key, aud=audience, sub=case.id, shop=case.shop, jti=jti, exp=exp, iat=int(time.time())
    )
    return jwt.encode(claims.model_dump(exclude_none=True), settings.secret_bytes, algorithm=ALGORITHM)


def mint_link_token(settings: Settings, case: Case) -> str:
    return _mint(settings, LINK_AUDIENCE, case, case.link_expires_at_ms // 1000, case.link_nonce)


def mint_buyer_token(settings: Settings, case: Case) -> str:
    return _mint(settings, BUYER_AUDIENCE, case, int(time.time()) + BUYER_SESSION_S)


def verify_case_token(settings: Settings, token: str, audience: str) -> CaseClaims:
    """The claims, or a typed error that never echoes the token (``link_expired`` for an old link)."""
    return decode_token(
        settings,
        token,
        CaseClaims,
        audience=audience,
        leeway_s=0,
        expired=VitrineError(ErrorCode.LINK_EXPIRED, "this link has expired: ask the seller for a new one"),
    )


def mint_buyer_join_token(settings: Settings, case: Case, name: str | None = None) -> str:
    """The buyer's ``/v1/rtc`` token: it knocks until the inspector has admitted this case's buyer once, so a
    link alone never reaches the seller's room; after that a rejoin (a new network) goes straight in."""
    grants = ROLE_DEFAULT_GRANTS[Role.BUYER].model_copy(update={"needs_admit": case.admitted_at_ms is None})
    return mint_token(
        settings,
        room=inspect_room(case.id),
        identity=buyer_identity(case.id),
        role=Role.BUYER,
        grants=grants,
        ttl_s=JOIN_TTL_S,
        name=name,
        shop=case.shop,
    )


def mint_inspector_join_token(settings: Settings, case: Case, name: str) -> str:
    return mint_token(
        settings,
        room=inspect_room(case.id),
        identity=inspector_identity(case.id),
        role=Role.INSPECTOR,
        ttl_s=JOIN_TTL_S,
        name=name,
        shop=case.shop,
    )


def bundle_signature(settings: Settings, shop: str, case_id: str, expires: int) -> str:
    """The signature of a short-lived bundle download URL: whoever holds the URL may fetch that one bundle
    until ``expires`` (a dispute reviewer without the shop's credentials), and nothing else."""
    key = hmac.new(settings.secret_bytes, b"vitrine evidence bundle url v1", hashlib.sha256).digest()
    return hmac.new(key, f"{shop}/{case_id}/{expires}".encode(), hashlib.sha256).hexdigest()


def check_bundle_signature(settings: Settings, shop: str, case_id: str, expires: int, signature: str) -> None:
    # As bytes: compare_digest raises TypeError on a str that is not ASCII, and a link's query is anyone's to write.
    if not hmac.compare_digest(bundle_signature(settings, shop, case_id, expires).encode(), signature.encode()):
        raise VitrineError(ErrorCode.INVALID_TOKEN, "this download link is not valid")
    if expires < time.time():
        raise VitrineError(ErrorCode.LINK_EXPIRED, "this download link has expired: ask the seller for a new one")
