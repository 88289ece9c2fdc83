"""``CaseService``: open an inspection case, issue its one-time link, and redeem the link once.

Cases are records (``signaling.inspect.store``, the ``cases`` table). Redeeming a link is a
read-modify-write of its case (the nonce still current, not used yet, then marked used), done under
the case's lock on every node, so two phones opening the same link at once get one session and one
``link_used``.
"""

from __future__ import annotations

from collections.abc import Callable

from signaling.inspect.links import (
    LINK_AUDIENCE,
    CaseClaims,
    mint_buyer_token,
    mint_link_token,
    verify_case_token,
)
from signaling.inspect.store import CaseStore
from signaling.state import State
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import now_ms
from vitrine.core.records.shops import require_shop
from vitrine.core.state.locks import NamedLocks
from vitrine.core.wire.inspect import Case, CaseSetup, CaseState, new_link_nonce


class CaseService:
    def __init__(self, settings: Settings, state: State, store: CaseStore) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self._locks = NamedLocks(state.locks, "the case is busy; try again")

    async def open(self, shop_id: str, setup: CaseSetup) -> tuple[Case, str]:
        """A new case and its link token."""
        await require_shop(self.state.records.shops, shop_id)
        case = Case(shop=shop_id, **setup.model_dump(), link_expires_at_ms=now_ms() + setup.link_ttl_s * 1000)
        await self._save(case)
        return case, mint_link_token(self.settings, case)

    async def get(self, shop_id: str, case_id: str) -> Case:
        case = await self.store.get(shop_id, case_id)
        if case is None:
            raise VitrineError(ErrorCode.CASE_NOT_FOUND, "no such case")
        return case

    async def recent(
        self, shop_id: str, limit: int | None, *, order_ref: str | None = None, buyer_ref: str | None = None
    ) -> list[Case]:
        await require_shop(self.state.records.shops, shop_id)
        return await self.store.recent(shop_id, limit, order_ref=order_ref, buyer_ref=buyer_ref)

    async def new_link(self, shop_id: str, case_id: str) -> tuple[Case, str]:
        """A fresh link (the buyer lost theirs, or it expired); the previous one stops working."""
        async with self._locks.hold(f"case:{case_id}"):
            case = await self.get(shop_id, case_id)
            if case.state == CaseState.CLOSED:
                raise VitrineError(ErrorCode.PERMISSION_DENIED, "the case is closed")
            case = case.model_copy(
                update={
                    "link_nonce": new_link_nonce(),
                    "link_used_at_ms": None,
                    "link_expires_at_ms": now_ms() + case.link_ttl_s * 1000,
                }
            )
            await self._save(case)
        return case, mint_link_token(self.settings, case)

    async def redeem(self, token: str) -> tuple[Case, str]:
        """Spend a link: the case and a buyer session token, or ``link_used`` / ``link_expired`` /
        ``invalid_token`` (a link replaced by a newer one, or forged)."""
        claims = verify_case_token(self.settings, token, LINK_AUDIENCE)
        async with self._locks.hold(f"case:{claims.sub}"):
            case = await self._case_of(claims)
            if claims.jti != case.link_nonce:
                raise VitrineError(ErrorCode.INVALID_TOKEN, "this link was replaced by a newer one")
            if case.link_used_at_ms is not None:
                raise VitrineError(ErrorCode.LINK_USED, "this link was already used: ask the seller for a new one")
            if case.state == CaseState.CLOSED:
                raise VitrineError(ErrorCode.LINK_EXPIRED, "this inspection is over")
            case = case.model_copy(update={"link_used_at_ms": now_ms(), "state": CaseState.IN_PROGRESS})
            await self._save(case)
        return case, mint_buyer_token(self.settings, case)

    async def update(self, shop_id: str, case_id: str, change: Callable[[Case], Case]) -> Case:
        """Read, change and save one case under its lock (on every node): ``change`` may raise to refuse."""
        async with self._locks.hold(f"case:{case_id}"):
            case = change(await self.get(shop_id, case_id))
            await self._save(case)
        return case

    async def delete(self, case: Case) -> None:
        await self.store.delete(case.shop, case.id)

    async def _case_of(self, claims: CaseClaims) -> Case:
        try:
            return await self.get(claims.shop, claims.sub)
        except VitrineError:
            raise VitrineError(ErrorCode.INVALID_TOKEN, "this link's case no longer exists") from None

    async def _save(self, case: Case) -> None:
        await self.store.save(case)
