"""Scenarios as plain data: the rooms to create and the clients (roles) to join them.

* ``consult``: N rooms, each a customer and an agent, both publishing audio and
  video and each watching the other.
* ``live``: one room, a host publishing audio and video, N viewers watching.
  The host joins first (phase 0); the load shape applies to the viewers.
* ``inspection``: N rooms, each a buyer publishing audio and video and an
  inspector watching (publishing nothing).

Clients are listed in join order: a ramp starts them one after another in this
order, a burst starts every client of a phase at once.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.config import RunConfig


@dataclass(frozen=True)
class RoomSpec:
    name: str
    kind: str
    max_participants: int


@dataclass(frozen=True)
class ClientSpec:
    id: str
    index: int  # position in join order, also the impairment's per-client seed
    room: str
    identity: str
    role: str
    publish: bool  # publishes audio (if enabled) and video
    watch: bool  # expects the other party's video, and is timed to its first frame
    phase: int  # 0 joins before the load shape starts (a live host); 1 is the load
    offset_s: float  # start, in seconds after its phase begins
    watches: str | None = None  # the identity of the publisher it watches (WHEP asks for it by name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity(role: str, index: int) -> str:
    return f"{role}-{index}"


def build(config: RunConfig, run_id: str | None = None) -> tuple[list[RoomSpec], list[ClientSpec]]:
    run_id = run_id or secrets.token_hex(3)
    prefix = f"lt-{run_id}"
    rooms: list[RoomSpec] = []
    clients: list[ClientSpec] = []
    step = 0.0 if config.shape == "burst" else 1.0 / config.join_rate

    def add(room: str, role: str, publish: bool, watches: str | None, phase: int, slot: int) -> None:
        index = len(clients)
        clients.append(
            ClientSpec(
                id=f"c{index:04d}",
                index=index,
                room=room,
                identity=identity(role, index),
                role=role,
                publish=publish,
                watch=watches is not None,
                phase=phase,
                offset_s=round(slot * step, 6),
                watches=watches,
            )
        )

    if config.scenario == "live":
        room = f"{prefix}-live"
        rooms.append(RoomSpec(room, "live", config.viewers + 5))
        add(room, "host", publish=True, watches=None, phase=0, slot=0)
        for i in range(config.viewers):
            add(room, "viewer", publish=False, watches=identity("host", 0), phase=1, slot=i)
    else:
        first, second = ("customer", "agent") if config.scenario == "consult" else ("buyer", "inspector")
        second_publishes = config.scenario == "consult"
        first_watches = config.scenario == "consult"
        for i in range(config.pairs):
            room = f"{prefix}-{config.scenario}-{i:04d}"
            rooms.append(RoomSpec(room, config.scenario, 4))  # over WHIP/WHEP a consult takes all 4 places
            a, b = len(clients), len(clients) + 1
            add(room, first, publish=True, watches=identity(second, b) if first_watches else None, phase=1, slot=2 * i)
            add(room, second, publish=second_publishes, watches=identity(first, a), phase=1, slot=2 * i + 1)
    return rooms, clients


def assign(clients: list[ClientSpec], workers: int) -> list[list[ClientSpec]]:
    """Shares of the clients, one per worker process.

    Phase-0 clients (a live host, the one source every viewer watches) get a process of their own,
    so the viewers' joins never delay their frames. The others are dealt round-robin in join order
    over ``workers`` processes, so every process carries an equal share of each moment's joins.
    """
    first = [c for c in clients if c.phase == 0]
    rest = [c for c in clients if c.phase != 0]
    shares: list[list[ClientSpec]] = [[] for _ in range(workers)]
    for i, client in enumerate(rest):
        shares[i % workers].append(client)
    return ([first] if first else []) + [share for share in shares if share]
