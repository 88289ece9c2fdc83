"""Schema migrations (``vitrine.core.records.migrate``) on the embedded SQLite and on PostgreSQL.

- an empty database migrates to the head revision;
- the tables the code declares (``vitrine.core.records.tables``) are exactly what the migrations build:
  a model change without its migration fails here;
- every revision upgrades a database at the revision before it to head, keeping its rows; and
  the head downgrades to an empty database and back;
- a server refuses a PostgreSQL database that is not at its revision, and says how to fix it;
- two nodes upgrading one PostgreSQL database at once take turns (the advisory lock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from signaling.records import open_records, records_on
from vitrine.core.config import Settings
from vitrine.core.records import migrate
from vitrine.core.records.database import Database, open_database
from vitrine.core.records.tables import metadata
from vitrine.core.shops import Shop

DEADLINE_S = 30.0
REVISIONS = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
async def empty_db(empty_url: str) -> AsyncIterator[Database]:
    db = open_database(empty_url)
    try:
        yield db
    finally:
        await db.close()


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def differences(db: Database) -> list[Any]:
    async with db.transaction() as conn:
        return await conn.run_sync(_differences)


async def table_names(db: Database) -> set[str]:
    async with db.transaction() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


def a_shop(shop_id: str) -> Shop:
    return Shop(id=shop_id, name=shop_id.title(), created_at_ms=1_000, allowed_origins=[f"https://{shop_id}.example"])


async def insert_shop_row(db: Database, shop: Shop) -> None:
    """Write a shop with plain SQL on the table as the database has it now (any revision's shape)."""
    async with db.transaction() as conn:
        shops = await conn.run_sync(lambda sync: sa.Table("shops", sa.MetaData(), autoload_with=sync))
        await conn.execute(
            shops.insert().values(id=shop.id, created_at_ms=shop.created_at_ms, doc=shop.model_dump(mode="json"))
        )


async def test_an_empty_database_migrates_to_head(empty_db: Database) -> None:
    assert await migrate.current_revision(empty_db) is None
    assert await migrate.upgrade(empty_db) is None  # the revision before: none
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert await migrate.upgrade(empty_db) == migrate.head_revision()  # again: nothing to do
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert {table.name for table in metadata.sorted_tables} | {"alembic_version"} == await table_names(empty_db)
    await migrate.require_head(empty_db)


async def test_the_models_match_the_migrations(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    assert await differences(empty_db) == []


@pytest.mark.parametrize("revision", REVISIONS, ids=[r.revision for r in REVISIONS])
async def test_each_revision_upgrades_to_head_keeping_rows(empty_db: Database, revision: Any) -> None:
    downs = revision.down_revision
    downs = [] if downs is None else [downs] if isinstance(downs, str) else list(downs)
    for down in downs:
        await migrate.upgrade(empty_db, down)
    kept = []
    if "shops" in await table_names(empty_db):
        kept.append(a_shop("before"))
        await insert_shop_row(empty_db, kept[-1])
    await migrate.upgrade(empty_db, revision.revision)
    assert await migrate.current_revision(empty_db) == revision.revision
    if not kept:  # the revision before had no shops table: keep a row written at this revision instead
        kept.append(a_shop("at-revision"))
        await insert_shop_row(empty_db, kept[-1])

    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert await differences(empty_db) == []
    shops = records_on(empty_db).shops
    for shop in kept:
        assert await shops.get_shop(shop.id) == shop


async def test_downgrade_to_base_and_upgrade_again(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    records = records_on(empty_db)
    assert await records.shops.create_shop(a_shop("acme"))

    await migrate.downgrade(empty_db, "base")
    assert await migrate.current_revision(empty_db) is None
    assert await table_names(empty_db) <= {"alembic_version"}

    assert await migrate.upgrade(empty_db) is None
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert await differences(empty_db) == []
    assert await records.shops.get_shop("acme") is None  # the downgrade dropped the data
    assert await records.shops.create_shop(a_shop("acme"))


async def test_sqlite_opens_migrated_on_first_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "var"), database_url=None)
    records = await open_records(settings)
    try:
        assert await migrate.current_revision(records.db) == migrate.head_revision()
        assert await records.shops.create_shop(a_shop("acme"))
    finally:
        await records.close()
    assert (tmp_path / "var" / "vitrine.db").is_file()

    again = await open_records(settings)  # reopening: already at head, the data is there
    try:
        assert await again.shops.get_shop("acme") == a_shop("acme")
    finally:
        await again.close()


@pytest.mark.postgres
async def test_postgres_must_be_migrated_before_serving(pg_database_url: str) -> None:
    settings = Settings(database_url=pg_database_url)
    with pytest.raises(migrate.SchemaMismatch, match="vitrine db upgrade") as refused:
        await open_records(settings)
    assert "none (empty)" in str(refused.value) and migrate.head_revision() in str(refused.value)

    db = open_database(pg_database_url)
    try:
        assert await table_names(db) == set()  # refusing wrote nothing
        await migrate.upgrade(db)
        await migrate.downgrade(db, "base")
        with pytest.raises(migrate.SchemaMismatch, match="vitrine db upgrade"):
            await open_records(settings)
        await migrate.upgrade(db)
    finally:
        await db.close()

    records = await open_records(settings)
    try:
        assert await records.shops.create_shop(a_shop("acme"))
    finally:
        await records.close()


async def _waiting_for_the_migration_lock(db: Database) -> int:
    key = migrate.PG_MIGRATION_LOCK
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = :high AND objid = :low AND objsubid = 1"
    )
    async with db.engine.connect() as conn:
        return int(await conn.scalar(query, {"high": key >> 32, "low": key & 0xFFFFFFFF}))


@pytest.mark.postgres
async def test_concurrent_upgrades_take_turns(pg_database_url: str) -> None:
    """Two nodes upgrade one fresh database at once: both succeed, one migrates, the other finds it done."""
    holder, node1, node2 = (open_database(pg_database_url) for _ in range(3))
    try:
        # Hold the lock first, so both upgrades are surely waiting on it at the same time.
        async with holder.engine.connect() as lock_conn:
            await lock_conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": migrate.PG_MIGRATION_LOCK})
            upgrades = [asyncio.create_task(migrate.upgrade(node)) for node in (node1, node2)]
            deadline = time.monotonic() + DEADLINE_S
            while await _waiting_for_the_migration_lock(holder) < 2:
                assert not any(task.done() for task in upgrades), [t.result() for t in upgrades if t.done()]
                if time.monotonic() > deadline:
                    pytest.fail(f"the two upgrades were not both waiting on the migration lock after {DEADLINE_S}s")
                await asyncio.sleep(0.02)
            await lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": migrate.PG_MIGRATION_LOCK})
            befores = await asyncio.wait_for(asyncio.gather(*upgrades), DEADLINE_S)
        assert sorted(befores, key=str) == sorted([None, migrate.head_revision()], key=str)
        for node in (node1, node2):
            assert await migrate.current_revision(node) == migrate.head_revision()
        assert await differences(node1) == []
    finally:
        for db in (holder, node1, node2):
            await db.close()
