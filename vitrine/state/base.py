"""The shared-state interfaces. Memory (embedded) and Redis (scaled) implement them.

Signaling and media workers only ever see these Protocols; ``vitrine.state.open_state``
picks the implementation from settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import Field

from vitrine.models import Participant, Room, Strict, Track, now_ms
from vitrine.shops import Agent, Product, Shop
from vitrine.state.desk import DeskStore, MemoryDeskStore
from vitrine.state.live import LiveStore, MemoryLiveStore
from vitrine.state.roomlog import MemoryRoomLog, RoomLog

if TYPE_CHECKING:
    from vitrine.state.outbox import WebhookOutbox


class WorkerNode(Strict):
    """A media worker as it announces itself with every heartbeat."""

    id: str
    rooms: int = 0
    participants: int = 0
    max_rooms: int = 0
    heartbeat_ms: int = 0
    stats: dict[str, int] = Field(default_factory=dict)  # forwarding counters, for metrics and tests

    def is_full(self) -> bool:
        return self.max_rooms > 0 and self.rooms >= self.max_rooms


@dataclass(frozen=True)
class JoinOutcome:
    """Result of admitting a participant: who it displaced, if the identity was already in."""

    replaced: Participant | None


class RoomStore(Protocol):
    async def create_room(self, room: Room) -> bool:
        """Store a new room; False when a room of that name exists."""

    async def get_room(self, name: str) -> Room | None: ...

    async def list_rooms(self) -> list[Room]: ...

    async def set_room_worker(self, name: str, worker_id: str | None) -> None: ...

    async def delete_room(self, name: str) -> Room | None:
        """Remove a room with its participants, tracks and sequence."""

    async def add_participant(self, room: str, participant: Participant, max_participants: int) -> JoinOutcome:
        """Admit atomically. Raises ROOM_FULL; replaces an older session of the same identity."""

    async def remove_participant(self, room: str, sid: str) -> Participant | None: ...

    async def get_participant(self, room: str, sid: str) -> Participant | None: ...

    async def list_participants(self, room: str) -> list[Participant]: ...

    async def add_track(self, room: str, track: Track) -> None: ...

    async def remove_track(self, room: str, track_sid: str) -> Track | None: ...

    async def list_tracks(self, room: str) -> list[Track]: ...

    async def add_knock(self, room: str, knock_id: str, raw: str) -> None: ...

    async def take_knock(self, room: str, knock_id: str) -> str | None:
        """Remove and return a knock: only one caller gets it, so a knock is settled once."""

    async def list_knocks(self, room: str) -> list[str]: ...

    async def add_relay(self, room: str, worker_id: str) -> None: ...

    async def remove_relay(self, room: str, worker_id: str) -> None: ...

    async def list_relays(self, room: str) -> list[str]:
        """The relay workers of a live room (see ``signaling.cascade``)."""

    async def next_seq(self, room: str) -> int:
        """Increment and return the room's event sequence number."""

    async def current_seq(self, room: str) -> int: ...

    async def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        """Take a named lock for at most ``ttl_ms``; returns the owner token, or None if held."""

    async def release_lock(self, name: str, token: str) -> bool:
        """Release only if ``token`` still owns the lock (compare-and-delete)."""


class NodeRegistry(Protocol):
    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        """Record the worker's state; rooms placed on it before now are in ``node.rooms``."""

    async def place_on_least_loaded(self, workers: list[WorkerNode]) -> WorkerNode:
        """Pick the least loaded of ``workers`` and count the room on it, in one atomic step.

        Load includes rooms placed since each worker's last heartbeat, so a burst of
        concurrent placements spreads instead of all reading the same heartbeat.
        """

    async def place_viewer(self, workers: list[WorkerNode]) -> WorkerNode:
        """The worker with the fewest participants (heartbeat plus viewers placed since), counting this one."""

    async def remove(self, worker_id: str) -> None: ...

    async def get(self, worker_id: str) -> WorkerNode | None: ...

    async def live_workers(self) -> list[WorkerNode]: ...


class ShopStore(Protocol):
    """Shops with their agents and products. Every agent and product call is scoped by shop id:
    there is no way to reach a record without naming the shop that owns it."""

    async def create_shop(self, shop: Shop) -> bool:
        """Store a new shop; False when a shop of that id exists."""

    async def get_shop(self, shop_id: str) -> Shop | None: ...

    async def list_shops(self) -> list[Shop]:
        """Every shop, oldest first."""

    async def update_shop(self, shop: Shop) -> bool:
        """Replace an existing shop's record; False (and nothing written) if it does not exist."""

    async def delete_shop(self, shop_id: str) -> Shop | None:
        """Remove the shop with all its agents and products."""

    async def put_agent(self, agent: Agent) -> bool:
        """Create or replace ``agent`` under ``agent.shop``; False if that shop does not exist."""

    async def get_agent(self, shop_id: str, agent_id: str) -> Agent | None: ...

    async def list_agents(self, shop_id: str) -> list[Agent]:
        """The shop's agents, by id."""

    async def delete_agent(self, shop_id: str, agent_id: str) -> Agent | None: ...

    async def put_product(self, shop_id: str, product: Product) -> bool:
        """Create or replace by SKU; False if the shop does not exist. URLs are checked by the caller."""

    async def get_product(self, shop_id: str, sku: str) -> Product | None: ...

    async def list_products(self, shop_id: str) -> list[Product]:
        """The shop's products, by SKU."""

    async def delete_product(self, shop_id: str, sku: str) -> Product | None: ...


MessageHandler = Callable[[str], Awaitable[None]]


class Subscription(Protocol):
    async def close(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, channel: str, message: str) -> int:
        """Deliver to current subscribers; returns how many received it."""

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription: ...


def _memory_shops() -> ShopStore:
    from vitrine.state.shops import MemoryShopStore  # imported late: that module imports this one

    return MemoryShopStore()


def _memory_outbox() -> WebhookOutbox:
    from vitrine.state.outbox import MemoryWebhookOutbox  # imported late, like the shop store

    return MemoryWebhookOutbox()


@dataclass
class State:
    rooms: RoomStore
    nodes: NodeRegistry
    bus: EventBus
    close: Callable[[], Awaitable[None]]
    # Defaults to memory so a State assembled by hand (tests, tools) still has one; open_state sets it.
    shops: ShopStore = field(default_factory=_memory_shops)
    outbox: WebhookOutbox = field(default_factory=_memory_outbox)  # webhook events awaiting delivery
    desk: DeskStore = field(default_factory=MemoryDeskStore)
    roomlog: RoomLog = field(default_factory=MemoryRoomLog)
    live: LiveStore = field(default_factory=MemoryLiveStore)


def placement_load(node: WorkerNode, placed_since_heartbeat: int) -> float:
    rooms = node.rooms + placed_since_heartbeat
    return rooms / node.max_rooms if node.max_rooms else 1.0


def stamp(node: WorkerNode) -> WorkerNode:
    return node.model_copy(update={"heartbeat_ms": now_ms()})
