"""Records: the shop's business data, durable and queryable, in SQLite (embedded) or PostgreSQL.

This package is the records layer: the database and its unit of work (``database``), the schema
(``tables``) and its migrations, and the stores every product shares: shops, agents and products
(``shops``), every room's ordered log (``roomlog``) and the webhook outbox (``outbox``). Each product
keeps its own store beside its server code (``signaling/<product>/store.py``); ``signaling.records``
gathers them all. A write returns only once it is committed, and the server acknowledges nothing before
its write returned, so nothing acknowledged is lost to a crash. Coordination state is elsewhere
(``vitrine.core.state``).
"""

from __future__ import annotations

import logging

from vitrine.core.config import Settings
from vitrine.core.records import migrate
from vitrine.core.records.database import Database, database_url, open_database, redacted

logger = logging.getLogger(__name__)

__all__ = ["Database", "open_database_at_head"]


async def open_database_at_head(settings: Settings) -> Database:
    """Open the database. The embedded SQLite file is created and migrated on the spot; a PostgreSQL
    database must already be at this code's revision (``vitrine db upgrade``), or this refuses."""
    url = database_url(settings)
    db = open_database(url)
    try:
        if db.is_sqlite:
            before = await migrate.upgrade(db)
            if before != migrate.head_revision():
                logger.info(
                    "records: %s migrated from %s to %s", redacted(url), before or "empty", migrate.head_revision()
                )
        else:
            await migrate.require_head(db)
    except BaseException:
        await db.close()
        raise
    return db
