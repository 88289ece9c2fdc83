"""``Coordination``: the stores a running cluster shares for the next few seconds, in memory or Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vitrine.core.state.bus import EventBus
from vitrine.core.state.epoch import EpochStore
from vitrine.core.state.leases import ParticipantLeases
from vitrine.core.state.locks import LockStore
from vitrine.core.state.nodes import NodeRegistry
from vitrine.core.state.presence import PresenceStore
from vitrine.core.state.rooms import RoomStore


@dataclass
class Coordination:
    rooms: RoomStore
    leases: ParticipantLeases  # of the participants in ``rooms``
    nodes: NodeRegistry
    bus: EventBus
    locks: LockStore
    presence: PresenceStore
    epoch: EpochStore
    close: Callable[[], Awaitable[None]]
