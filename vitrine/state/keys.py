"""Every Redis key and pub/sub channel Vitrine uses, in one place.

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


def room_log_key(room: str) -> str:
    """STREAM: the room's log, entry ids ``0-<seq>``, field ``e`` = ``LogEntry`` JSON without its seq."""
    return f"{PREFIX}:{{{room}}}:log"


def room_log_seq_key(room: str) -> str:
    """STRING (integer, INCR): the last chat log ``seq`` given in the room."""
    return f"{PREFIX}:{{{room}}}:logseq"


def live_state_key(room: str) -> str:
    """STRING: a live room's ``LiveState`` JSON (pins, deal, pinned message, slow mode)."""
    return f"{PREFIX}:{{{room}}}:live"


def live_stats_key(room: str) -> str:
    """HASH: a live room's counters (messages, likes, clicks, watch_ms, peak_viewers, click:<sku>...)."""
    return f"{PREFIX}:{{{room}}}:stats"


def live_banned_key(room: str) -> str:
    """SET: identities banned from a live room."""
    return f"{PREFIX}:{{{room}}}:banned"


def live_muted_key(room: str) -> str:
    """HASH: identity -> epoch ms until which it may not chat."""
    return f"{PREFIX}:{{{room}}}:muted"


def live_slow_key(room: str, identity: str) -> str:
    """STRING + PX TTL: present while ``identity`` must wait before its next line (slow mode)."""
    return f"{PREFIX}:{{{room}}}:slow:{identity}"


def live_room_keys(room: str) -> list[str]:
    """What a show keeps beside its room and log until the show is deleted (slow-mode keys expire)."""
    return [live_state_key(room), live_stats_key(room), live_banned_key(room), live_muted_key(room)]


def shop_shows_key(shop_id: str) -> str:
    """HASH: show id -> ``Show`` JSON."""
    return f"{PREFIX}:{{shop:{shop_id}}}:shows"


def shop_shows_order_key(shop_id: str) -> str:
    """ZSET: show id -> creation time (ms): the shop's shows, newest last."""
    return f"{PREFIX}:{{shop:{shop_id}}}:shows:order"


def relays_key(room: str) -> str:
    """SET: ids of the relay workers a live room's origin forwards to (each serves a share of its viewers)."""
    return f"{PREFIX}:{{{room}}}:relays"


def knocks_key(room: str) -> str:
    """HASH: knock id -> ``Knock`` JSON, waiting for a room admin to admit or deny it."""
    return f"{PREFIX}:{{{room}}}:knocks"


def room_keys(room: str) -> list[str]:
    """The keys ``delete_room`` removes: the room's data, not its lock (owned by the holder, expires)."""
    return [room_key(room), participants_key(room), identities_key(room), tracks_key(room), seq_key(room),
            relays_key(room), knocks_key(room)]


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


# SET of shop ids (members: the plain id). Global, like ROOMS_INDEX: written beside a shop's keys.
SHOPS_INDEX = f"{PREFIX}:shops"


# A shop's keys share the hash tag ``{shop:<id>}``. Shop ids are slugs (``shops.SLUG_PATTERN``), so the
# tag is exact; a room named ``shop:<id>`` would share the slot but no key (different suffixes).


def shop_key(shop_id: str) -> str:
    """STRING: the ``Shop`` as ``Shop.model_dump_json()``. Created with SET NX, replaced with SET XX."""
    return f"{PREFIX}:{{shop:{shop_id}}}:shop"


def shop_agents_key(shop_id: str) -> str:
    """HASH: agent id -> ``Agent`` JSON."""
    return f"{PREFIX}:{{shop:{shop_id}}}:agents"


def shop_products_key(shop_id: str) -> str:
    """HASH: SKU -> ``Product`` JSON."""
    return f"{PREFIX}:{{shop:{shop_id}}}:products"


def webhook_outbox_key(shop_id: str) -> str:
    """LIST: ``WebhookEvent`` JSON waiting for delivery, oldest (the next to send) at the head."""
    return f"{PREFIX}:{{shop:{shop_id}}}:webhooks:outbox"


def webhook_seq_key(shop_id: str) -> str:
    """HASH: room -> the last ``seq`` given to an event of that room (HINCRBY; absent means 0)."""
    return f"{PREFIX}:{{shop:{shop_id}}}:webhooks:seq"


def webhook_dead_key(shop_id: str) -> str:
    """LIST: ``WebhookFailure`` JSON, newest first, trimmed to ``webhooks.MAX_FAILURES``."""
    return f"{PREFIX}:{{shop:{shop_id}}}:webhooks:dead"


# SET of shop ids whose outbox may be non-empty: what the delivery sweep scans. Global, so written
# beside (never inside) a shop's atomic operations; an entry whose outbox is empty is pruned.
WEBHOOKS_PENDING = f"{PREFIX}:webhooks:pending"


def shop_keys(shop_id: str) -> list[str]:
    """The keys ``delete_shop`` removes: the shop and everything it owns, pending webhooks included."""
    return [shop_key(shop_id), shop_agents_key(shop_id), shop_products_key(shop_id),
            webhook_outbox_key(shop_id), webhook_seq_key(shop_id), webhook_dead_key(shop_id),
            shop_shows_key(shop_id), shop_shows_order_key(shop_id)]


def desk_records_key(shop_id: str, collection: str) -> str:
    """HASH: record id -> JSON, one per consult desk collection (tickets, presence, calls, requests)."""
    return f"{PREFIX}:{{shop:{shop_id}}}:desk:{collection}"


def desk_order_key(shop_id: str, collection: str) -> str:
    """ZSET: record id -> score (entry or creation time); the order of a desk collection."""
    return f"{PREFIX}:{{shop:{shop_id}}}:desk:{collection}:order"


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


def node_inbox_channel(node_id: str) -> str:
    """Channel: JSON messages (e.g. RPC replies) addressed to one signaling node."""
    return f"{PREFIX}:node:{node_id}:inbox"
