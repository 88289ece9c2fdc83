"""``Records``: every store signaling writes to, over one database.

The shared stores (shops, room logs, the webhook outbox) are the kernel's (``vitrine.core.records``);
each product's store lives with the product (``signaling/<product>/store.py``). This aggregate imports every
product, so only the composition (``signaling/runtime.py``) and the tests hold it: the spine and the products see
the shared stores (``signaling.state.SharedRecords``), and each product's service is handed its own store.
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.consult.store import ConsultStore, SqlConsultStore
from signaling.inspect.store import CaseStore, SqlCaseStore
from signaling.live.store import ShowStore, SqlShowStore
from vitrine.core.config import Settings
from vitrine.core.records import open_database_at_head
from vitrine.core.records.database import Database
from vitrine.core.records.outbox import SqlWebhookOutbox, WebhookOutbox
from vitrine.core.records.roomlog import RoomLog, SqlRoomLog
from vitrine.core.records.shops import ShopStore, SqlShopStore

__all__ = ["Records", "open_records", "records_on"]


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

    async def owns_recording(self, owner_id: str) -> bool:
        """Whether the record a recording is named after exists: a show's (``sh_``), else a case's."""
        if owner_id.startswith("sh_"):
            return await self.shows.exists(owner_id)
        return await self.cases.exists_anywhere(owner_id)


def records_on(db: Database) -> Records:
    return Records(
        db=db,
        shops=SqlShopStore(db),
        consult=SqlConsultStore(db),
        cases=SqlCaseStore(db),
        shows=SqlShowStore(db),
        roomlog=SqlRoomLog(db),
        outbox=SqlWebhookOutbox(db),
    )


async def open_records(settings: Settings) -> Records:
    """The records over the database at this code's revision (``vitrine.core.records.open_database_at_head``)."""
    return records_on(await open_database_at_head(settings))
