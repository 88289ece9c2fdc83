"""Records: the shop's business data, durable and queryable, in SQLite (embedded) or PostgreSQL.

Shops, agents and products; consult tickets, call records and contact requests; inspection cases
and erasures; shows with their live state and counters; every room log; the webhook outbox. A write
returns only once it is committed, and the server acknowledges nothing before its write returned,
so nothing acknowledged is lost to a crash. Coordination state is elsewhere (``vitrine.state``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vitrine.config import Settings
from vitrine.records import migrate
from vitrine.records.cases import CaseStore, SqlCaseStore
from vitrine.records.consult import ConsultStore, SqlConsultStore
from vitrine.records.database import Database, database_url, open_database, redacted
from vitrine.records.outbox import SqlWebhookOutbox, WebhookOutbox
from vitrine.records.roomlog import RoomLog, SqlRoomLog
from vitrine.records.shops import ShopStore, SqlShopStore
from vitrine.records.shows import ShowStore, SqlShowStore

logger = logging.getLogger(__name__)

__all__ = ["CaseStore", "ConsultStore", "Database", "Records", "RoomLog", "ShopStore", "ShowStore", "WebhookOutbox",
           "open_records"]


@dataclass
class Records:
    db: Database
    shops: ShopStore
    consult: ConsultStore
    cases: CaseStore
    shows: ShowStore
    roomlog: RoomLog
    outbox: WebhookOutbox

    async def close(self) -> None:
        await self.db.close()


def records_on(db: Database) -> Records:
    return Records(db=db, shops=SqlShopStore(db), consult=SqlConsultStore(db), cases=SqlCaseStore(db),
                   shows=SqlShowStore(db), roomlog=SqlRoomLog(db), outbox=SqlWebhookOutbox(db))


async def open_records(settings: Settings) -> Records:
    """Open the database. The embedded SQLite file is created and migrated on the spot; a PostgreSQL
    database must already be at this code's revision (``vitrine db upgrade``), or this refuses."""
    url = database_url(settings)
    db = open_database(url)
    try:
        if db.is_sqlite:
            before = await migrate.upgrade(db)
            if before != migrate.head_revision():
                logger.info("records: %s migrated from %s to %s", redacted(url), before or "empty",
                            migrate.head_revision())
        else:
            await migrate.require_head(db)
    except BaseException:
        await db.close()
        raise
    return records_on(db)
