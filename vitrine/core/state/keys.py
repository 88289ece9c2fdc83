"""Every Redis key and pub/sub channel Vitrine uses, in one place. Redis holds coordination only:
records are in the database (``vitrine.core.records``), and what each key's loss does is in
``docs/architecture.md`` ("Durable records and coordination").

All keys of one room carry the hash tag ``{<room>}`` so they share a cluster slot:
multi-key Lua scripts and MULTI blocks on a room stay valid under Redis Cluster.
Room names cannot contain braces (``models.NAME_PATTERN``), so the tag is exact.
Worker keys share the tag ``{workers}`` for the same reason (the registry is small).
"""

from __future__ import annotations

PREFIX = "vitrine"

# SET of room names (members: the plain room name). A global key: it spans all
# rooms, so it is updated beside, never inside, a room's atomic operations.
ROOMS_INDEX = f"{PREFIX}:rooms"

# STRING: a random token written (SET NX) by the first process that finds it missing. A process that
# sees a token other than the one it saw before knows Redis lost everything (``vitrine.core.state.epoch``).
EPOCH = f"{PREFIX}:epoch"

# SET of worker ids that have heartbeated; pruned of ids whose record expired.
WORKERS_INDEX = f"{PREFIX}:{{workers}}:index"


def room_key(room: str) -> str:
    """STRING: the ``Room`` as ``Room.model_dump_json()``. Created with SET NX."""
    return f"{PREFIX}:{{{room}}}:room"


def participants_key(room: str) -> str:
    """HASH: participant sid -> ``Participant`` JSON."""
    return f"{PREFIX}:{{{room}}}:participants"


def identities_key(room: str) -> str:
    """HASH: identity -> participant sid; lets a rejoin find the session it replaces."""
    return f"{PREFIX}:{{{room}}}:identities"


def tracks_key(room: str) -> str:
    """HASH: track sid -> ``Track`` JSON."""
    return f"{PREFIX}:{{{room}}}:tracks"


def seq_key(room: str) -> str:
    """STRING (integer, INCR): the room's last event sequence number; absent means 0."""
    return f"{PREFIX}:{{{room}}}:seq"


def relays_key(room: str) -> str:
    """SET: ids of the relay workers a live room's origin forwards to (each serves a share of its viewers)."""
    return f"{PREFIX}:{{{room}}}:relays"


def knocks_key(room: str) -> str:
    """HASH: knock id -> ``Knock`` JSON, waiting for a room admin to admit or deny it."""
    return f"{PREFIX}:{{{room}}}:knocks"


def leases_key(room: str) -> str:
    """ZSET: participant sid -> the Redis server time (ms) its lease runs out. The participant's signaling node
    renews it every ``VITRINE_PARTICIPANT_LEASE_RENEW_S``; a sweeper removes the participant once it has run out
    (``vitrine.core.state.leases``). Written and removed by the same scripts as ``participants_key``."""
    return f"{PREFIX}:{{{room}}}:leases"


def room_keys(room: str) -> list[str]:
    """The keys ``delete_room`` removes: the room's data, not its lock (owned by the holder, expires)."""
    return [
        room_key(room),
        participants_key(room),
        identities_key(room),
        tracks_key(room),
        seq_key(room),
        relays_key(room),
        knocks_key(room),
        leases_key(room),
    ]


def lock_key(name: str) -> str:
    """STRING: owner token, set with NX PX. ``acquire_lock(<room>)`` is the room's lock, in its slot."""
    return f"{PREFIX}:{{{name}}}:lock"


def worker_key(worker_id: str) -> str:
    """STRING with PX TTL: the ``WorkerNode`` JSON of its last heartbeat; expires when it stops."""
    return f"{PREFIX}:{{workers}}:worker:{worker_id}"


def worker_viewers_placed_key(worker_id: str) -> str:
    """STRING counter (INCR, PX TTL): live viewers placed on the worker since its last heartbeat, which deletes it."""
    return f"{PREFIX}:{{workers}}:viewers:{worker_id}"


def worker_placed_key(worker_id: str) -> str:
    """STRING counter (INCR, PX TTL): rooms placed on the worker since its last heartbeat, which deletes it.

    A burst of placements between two heartbeats would otherwise all pick the same worker.
    """
    return f"{PREFIX}:{{workers}}:placed:{worker_id}"


# A shop's keys share the hash tag ``{shop:<id>}``. Shop ids are slugs (``shops.SLUG_PATTERN``), so the
# tag is exact; a room named ``shop:<id>`` would share the slot but no key (different suffixes).


def presence_key(shop_id: str) -> str:
    """HASH: agent id -> ``Presence`` JSON: what each consult agent's console is doing now."""
    return f"{PREFIX}:{{shop:{shop_id}}}:presence"


# Pub/sub channels. Plain (non-sharded) channels ignore slots; the room channel
# keeps the tag anyway so it could move to SPUBLISH without renaming.


def room_events_channel(room: str) -> str:
    """Channel: the room's events, one JSON message each, fanned out to signaling nodes."""
    return f"{PREFIX}:{{{room}}}:events"


def desk_channel(shop_id: str) -> str:
    """Channel: consult desk pushes for one shop's agents and shoppers, fanned out to signaling nodes."""
    return f"{PREFIX}:{{shop:{shop_id}}}:desk"


def worker_rpc_channel(worker_id: str) -> str:
    """Channel: JSON requests addressed to one media worker."""
    return f"{PREFIX}:worker:{worker_id}:rpc"


def worker_acks_channel(worker_id: str) -> str:
    """Channel: ``PushAck`` JSON, a signaling node's answers to the pushes of one media worker that asked."""
    return f"{PREFIX}:worker:{worker_id}:acks"


def node_inbox_channel(node_id: str) -> str:
    """Channel: JSON messages (e.g. RPC replies) addressed to one signaling node."""
    return f"{PREFIX}:node:{node_id}:inbox"
