"""Alembic's environment: migrations run on a connection ``vitrine.core.records.migrate`` hands over.

``vitrine db upgrade`` and the embedded server's start both go through ``migrate.upgrade``, which
opens the async engine and runs Alembic inside one transaction on it; so does ``alembic`` itself
when pointed at ``vitrine/core/records/alembic.ini`` (``-x url=...``), for writing new revisions.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from vitrine.core.records.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from vitrine.core.records.database import open_database

    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite+aiosqlite:///var/vitrine.db ...")

    async def run() -> None:
        db = open_database(url)
        try:
            async with db.transaction() as conn:
                await conn.run_sync(_run)
        finally:
            await db.close()

    asyncio.run(run())


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them against a database")
_online()
