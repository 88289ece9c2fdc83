"""Schema migrations (Alembic): bring a database to the code's revision, or say how far behind it is.

The embedded SQLite database upgrades itself at start. A PostgreSQL database is upgraded by the
operator (``vitrine db upgrade``, the compose file's ``migrate`` service) before new code serves it,
and a server refuses to start on a schema that is not its own: it would misread every record.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vitrine.core.records.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin, every run
# Any fixed 64-bit number: two nodes upgrading one PostgreSQL database at once take turns.
PG_MIGRATION_LOCK = 0x76697472696E65


class SchemaMismatch(RuntimeError):
    """The database is not at the revision this code was written for."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _lock(connection: sa.Connection) -> None:
    """Two nodes migrating one PostgreSQL database at once take turns (SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})


async def current_revision(db: Database) -> str | None:
    async with db.transaction() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Apply every migration up to ``revision`` in one transaction; returns the revision before."""
    config = alembic_config()

    def run(connection: sa.Connection) -> str | None:
        _lock(connection)
        before = _current(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return before

    async with db.transaction() as conn:
        return await conn.run_sync(run)


async def downgrade(db: Database, revision: str) -> None:
    config = alembic_config()

    def run(connection: sa.Connection) -> None:
        _lock(connection)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.transaction() as conn:
        await conn.run_sync(run)


async def require_head(db: Database) -> None:
    current, head = await current_revision(db), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaMismatch(
            f"the records database is at revision {current}, newer than this code ({head}): "
            "run the release that migrated it"
        )
    raise SchemaMismatch(
        f"the records database is at revision {current or 'none (empty)'}, this code needs "
        f"{head}: run `vitrine db upgrade` first"
    )
