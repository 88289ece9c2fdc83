"""The unit of work (``Database.unit``): a record and the webhook that tells of it commit together.

Runs on SQLite and PostgreSQL through the ``records`` fixture, with real transactions: what another
connection can see is read through a second engine (another node) on the same database.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from signaling.records import Records
from tests.records_helpers import a_call, a_shop, a_ticket, another_node
from vitrine.core.records import tables
from vitrine.core.records.database import UnitAborted
from vitrine.core.webhooks import WebhookEvent, WebhookType


def an_event(room: str) -> WebhookEvent:
    return WebhookEvent(type=WebhookType.ENDED, shop="acme", room=room, data={"talk_ms": 1})


async def test_a_unit_commits_a_record_and_its_event_together(records: Records) -> None:
    await records.shops.create_shop(a_shop("acme"))
    committed: list[str] = []
    async with another_node(records) as node2:
        async with records.db.unit():
            await records.consult.finish(a_call("acme", 1, 100))
            stored = await records.outbox.append(an_event("tk_ticket0001"))
            records.db.after_commit(lambda: committed.append("woken"))
            assert committed == []  # not before the commit
            assert await records.consult.call("acme", "tk_ticket0001") is not None  # the unit reads its own writes
            if not records.db.is_sqlite:  # (SQLite: another connection waits for the commit, BEGIN IMMEDIATE)
                assert await node2.outbox.peek("acme") is None
                assert await node2.db.scalar(sa.select(sa.func.count()).select_from(tables.webhook_events)) == 0
        assert committed == ["woken"]
        assert await node2.consult.call("acme", "tk_ticket0001") is not None
        assert await node2.outbox.peek("acme") == stored


async def test_an_error_in_a_unit_keeps_neither(records: Records) -> None:
    await records.shops.create_shop(a_shop("acme"))
    committed: list[str] = []
    with pytest.raises(RuntimeError, match="after the record"):
        async with records.db.unit():
            await records.consult.finish(a_call("acme", 1, 100))
            await records.outbox.append(an_event("tk_ticket0001"))
            records.db.after_commit(lambda: committed.append("woken"))
            raise RuntimeError("a crash after the record, before the acknowledgement")
    assert committed == []
    assert await records.consult.call("acme", "tk_ticket0001") is None
    assert await records.outbox.peek("acme") is None


async def test_a_failed_statement_caught_inside_a_unit_aborts_it(records: Records) -> None:
    """PostgreSQL refuses the rest of a failed transaction, so a unit whose statement failed never commits
    what came before it, even when the error was caught inside."""
    await records.shops.create_shop(a_shop("acme"))
    with pytest.raises(UnitAborted):
        async with records.db.unit():
            await records.consult.save_ticket(a_ticket("acme", 1, 100))
            with pytest.raises(sa.exc.DBAPIError):
                await records.db.execute(sa.text("SELECT no_such_column FROM tickets"))
    assert await records.consult.ticket("acme", "tk_ticket0001") is None


async def test_a_unit_inside_a_unit_joins_it(records: Records) -> None:
    await records.shops.create_shop(a_shop("acme"))
    with pytest.raises(RuntimeError):
        async with records.db.unit():
            async with records.db.unit():
                await records.consult.save_ticket(a_ticket("acme", 1, 100))
            assert await records.consult.ticket("acme", "tk_ticket0001") is not None
            raise RuntimeError("the outer unit fails")
    assert await records.consult.ticket("acme", "tk_ticket0001") is None


async def test_other_tasks_never_join_a_unit(records: Records) -> None:
    """A task started inside a unit copies its context, but writes in its own transaction, after the unit
    (SQLite: one connection, so it waits for the commit) or beside it (PostgreSQL): never inside it."""
    await records.shops.create_shop(a_shop("acme"))
    with pytest.raises(RuntimeError):
        async with records.db.unit():
            await records.consult.save_ticket(a_ticket("acme", 1, 100))
            other = asyncio.create_task(records.consult.save_ticket(a_ticket("acme", 2, 200)))
            if not records.db.is_sqlite:
                await other  # its own transaction commits, although this unit has not
            raise RuntimeError("the unit rolls back")
    await other
    assert [t.id for t in await records.consult.tickets("acme")] == ["tk_ticket0002"]
