"""The record tables: what a shop needs months later, in SQLite (embedded) or PostgreSQL (scaled).

Each table keeps the full record as its pydantic model's JSON (``doc``), the single definition of
the record's shape, beside the columns that identify, order, constrain and index it: the queries
shops ask (calls by date and agent, cases by order and buyer, shows by date) run on real columns.
Everything a shop owns names it (``shop_id``) and goes with it: deleting a shop cascades. What a
room keeps (live state, counters, bans, mutes, its log) is keyed by the room, and goes with its show
or case (``ShowStore.delete_show``, ``signaling.inspect.evidence`` purge), which a shop's deletion
removes first (``signaling.routes.shops``).

Migrations (``vitrine/core/records/migrations``) create these tables; ``tests/test_migrations.py``
checks that the two never drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

# Named constraints, so a migration can alter them the same way on SQLite and PostgreSQL.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSON text on SQLite; JSONB on PostgreSQL, so an operator can query inside a record.
Document = sa.JSON().with_variant(JSONB(), "postgresql")
Ms = sa.BigInteger  # epoch milliseconds


def _shop_id() -> sa.Column[str]:
    return sa.Column("shop_id", sa.String(64), sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)


shops = sa.Table(
    "shops",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("doc", Document, nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    _shop_id(),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.PrimaryKeyConstraint("shop_id", "id"),
)

products = sa.Table(
    "products",
    metadata,
    _shop_id(),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.PrimaryKeyConstraint("shop_id", "sku"),
)

# A shopper in the queue or in a call; becomes a call record when it ends.
tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    _shop_id(),
    sa.Column("entered_ms", Ms, nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "entered_ms"),
)

call_records = sa.Table(
    "call_records",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    _shop_id(),
    sa.Column("queued_ms", Ms, nullable=False),
    sa.Column("agent", sa.String(64)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "queued_ms"),
    sa.Index(None, "shop_id", "agent", "queued_ms"),
)

contact_requests = sa.Table(
    "contact_requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    _shop_id(),
    sa.Column("created_ms", Ms, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("resolved_ms", Ms),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "created_ms"),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    _shop_id(),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("order_ref", sa.String(120), nullable=False),
    sa.Column("buyer_ref", sa.String(128)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("closed_at_ms", Ms),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "created_at_ms"),
    sa.Index(None, "shop_id", "order_ref"),
    sa.Index(None, "shop_id", "buyer_ref"),
)

# Erasures carried out: counts only, never the buyer's data.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    _shop_id(),
    sa.Column("at_ms", Ms, nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "at_ms"),
)

shows = sa.Table(
    "shows",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    _shop_id(),
    sa.Column("room", sa.String(128), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("scheduled_at_ms", Ms),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "created_at_ms"),
    sa.Index(None, "shop_id", "scheduled_at_ms"),
)

# What a live show's room keeps beside its log; each row goes when its show is deleted.
live_states = sa.Table(
    "live_states",
    metadata,
    sa.Column("room", sa.String(128), primary_key=True),
    sa.Column("doc", Document, nullable=False),
)

live_counters = sa.Table(
    "live_counters",
    metadata,
    sa.Column("room", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("room", "name"),
)

live_bans = sa.Table(
    "live_bans",
    metadata,
    sa.Column("room", sa.String(128), nullable=False),
    sa.Column("identity", sa.String(128), nullable=False),
    sa.PrimaryKeyConstraint("room", "identity"),
)

live_mutes = sa.Table(
    "live_mutes",
    metadata,
    sa.Column("room", sa.String(128), nullable=False),
    sa.Column("identity", sa.String(128), nullable=False),
    sa.Column("until_ms", Ms, nullable=False),
    sa.PrimaryKeyConstraint("room", "identity"),
)

# A room's ordered log (chat, live events, an inspection's actions): the replay and the timeline.
room_log = sa.Table(
    "room_log",
    metadata,
    sa.Column("room", sa.String(128), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.PrimaryKeyConstraint("room", "seq"),
)

# The last seq given in each room: the row every append of the room updates, which orders them.
room_log_heads = sa.Table(
    "room_log_heads",
    metadata,
    sa.Column("room", sa.String(128), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

# The webhook outbox: a shop's events in delivery order (``position``), each numbered per room.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    _shop_id(),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("room", sa.String(256), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "position"),
)

webhook_seqs = sa.Table(
    "webhook_seqs",
    metadata,
    _shop_id(),
    sa.Column("room", sa.String(256), nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("shop_id", "room"),
)

webhook_failures = sa.Table(
    "webhook_failures",
    metadata,
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    _shop_id(),
    sa.Column("failed_ms", Ms, nullable=False),
    sa.Column("doc", Document, nullable=False),
    sa.Index(None, "shop_id", "position"),
)
