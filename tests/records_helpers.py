"""What the records tests share (tests/test_records.py, tests/test_records_unit.py): shops, tickets and calls to
store, and a second node on the same database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from signaling.consult.models import CallOutcome, CallRecord, ShopperContext, Ticket
from signaling.records import Records, records_on
from vitrine.core.records.database import open_database
from vitrine.core.shops import Shop


def a_shop(shop_id: str, created_at_ms: int = 1_000, name: str | None = None) -> Shop:
    return Shop(
        id=shop_id,
        name=name or shop_id.title(),
        created_at_ms=created_at_ms,
        allowed_origins=[f"https://{shop_id}.example"],
    )


def a_ticket(shop: str, n: int | str, entered_ms: int) -> Ticket:
    return Ticket(id=f"tk_ticket{n:0>4}", shop=shop, context=ShopperContext(name=f"Shopper {n}"), entered_ms=entered_ms)


def a_call(
    shop: str, n: int | str, queued_ms: int, agent: str | None = "alice", outcome: CallOutcome = CallOutcome.ANSWERED
) -> CallRecord:
    return CallRecord(
        id=f"tk_ticket{n:0>4}",
        shop=shop,
        context=ShopperContext(),
        outcome=outcome,
        agent=agent,
        queued_ms=queued_ms,
        wait_ms=1500,
        answered_ms=queued_ms + 1500 if agent else None,
    )


@contextlib.asynccontextmanager
async def another_node(records: Records) -> AsyncIterator[Records]:
    """A second, independent ``Records`` (its own engine and pool) on the same database: another node."""
    other = records_on(open_database(records.db.engine.url.render_as_string(hide_password=False)))
    try:
        yield other
    finally:
        await other.close()
