"""An inspection case: a seller's request to see a buyer's item, reached through a one-time link.

The seller opens a case for an order and the issue the buyer claims. The case's link holds a
signed, expiring, single-use token (``vitrine.inspect.links``): it goes in the URL fragment, so it
never reaches a server log, and using it once spends it. A new link replaces the old one.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from pydantic import Field

from vitrine.models import Strict, now_ms
from vitrine.shops import LanguageTag

DEFAULT_LINK_TTL_S = 3600
MIN_LINK_TTL_S, MAX_LINK_TTL_S = 60, 7 * 24 * 3600


def new_case_id() -> str:
    return "cs_" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def new_link_nonce() -> str:
    return secrets.token_urlsafe(12)


class CaseState(StrEnum):
    OPEN = "open"  # the link is out, not used yet
    IN_PROGRESS = "in_progress"  # the buyer opened the link
    CLOSED = "closed"


class CaseSetup(Strict):
    order_ref: str = Field(min_length=1, max_length=120, description="The shop's order reference")
    claim: str = Field(min_length=1, max_length=2000, description="The issue the buyer claims")
    language: LanguageTag = "en"
    link_ttl_s: int = Field(default=DEFAULT_LINK_TTL_S, ge=MIN_LINK_TTL_S, le=MAX_LINK_TTL_S,
                            description="How long the buyer's link stays valid")


class CaseView(CaseSetup):
    """A case as the shop's backend sees it."""

    id: str = Field(default_factory=new_case_id, pattern=r"^cs_[A-Za-z0-9]{12}$")
    shop: str
    state: CaseState = CaseState.OPEN
    created_at_ms: int = Field(default_factory=now_ms)
    link_expires_at_ms: int = 0
    link_used_at_ms: int | None = None


class Case(CaseView):
    """The stored case: also the current link's nonce, which only the link itself carries."""

    link_nonce: str = Field(default_factory=new_link_nonce)

    def view(self) -> CaseView:
        return CaseView.model_validate(self.model_dump(exclude={"link_nonce"}))
