"""What signaling works with: coordination (memory or Redis) and records (the database).

The spine and the products see only the records they share here (``SharedRecords``: the kernel's stores). The
aggregate that adds each product's store (``signaling.records``) imports the products, which import this, so
the composition opens it and hands it in, and gives each product's service its own store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vitrine.core.config import Settings
from vitrine.core.records.database import Database
from vitrine.core.records.outbox import WebhookOutbox
from vitrine.core.records.roomlog import RoomLog
from vitrine.core.records.shops import ShopStore
from vitrine.core.state import (
    Coordination,
    EventBus,
    LockStore,
    NodeRegistry,
    PresenceStore,
    RoomStore,
    open_coordination,
)


class SharedRecords(Protocol):
    """The stores the spine and every product share, over one database."""

    db: Database
    shops: ShopStore
    roomlog: RoomLog
    outbox: WebhookOutbox

    async def close(self) -> None: ...


@dataclass
class State:
    coordination: Coordination
    records: SharedRecords

    @property
    def rooms(self) -> RoomStore:
        return self.coordination.rooms

    @property
    def nodes(self) -> NodeRegistry:
        return self.coordination.nodes

    @property
    def bus(self) -> EventBus:
        return self.coordination.bus

    @property
    def locks(self) -> LockStore:
        return self.coordination.locks

    @property
    def presence(self) -> PresenceStore:
        return self.coordination.presence

    async def close(self) -> None:
        try:
            await self.records.close()
        finally:
            await self.coordination.close()


async def open_state(settings: Settings, records: SharedRecords) -> State:
    """Coordination, opened beside the records the caller opened; if it cannot open, they are closed."""
    try:
        coordination = await open_coordination(settings)
    except BaseException:
        await records.close()
        raise
    return State(coordination=coordination, records=records)
