"""What signaling works with: coordination (memory or Redis) and records (the database)."""

from __future__ import annotations

from dataclasses import dataclass

from signaling.records import Records, open_records
from vitrine.core.config import Settings
from vitrine.core.state import (
    Coordination,
    EventBus,
    LockStore,
    NodeRegistry,
    PresenceStore,
    RoomStore,
    open_coordination,
)


@dataclass
class State:
    coordination: Coordination
    records: Records

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


async def open_state(settings: Settings) -> State:
    records = await open_records(settings)
    try:
        coordination = await open_coordination(settings)
    except BaseException:
        await records.close()
        raise
    return State(coordination=coordination, records=records)
