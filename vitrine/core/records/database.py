"""The records database: an async SQLAlchemy engine on SQLite (embedded) or PostgreSQL (scaled).

- **Embedded default**: ``<VITRINE_DATA_DIR>/vitrine.db`` (``./var``), created on first start, in WAL
  mode with ``synchronous=FULL``: a committed transaction is on disk before the caller hears of it,
  so a record survives a ``kill -9`` (or a power cut) right after its acknowledgement. One
  connection per process, so writers in one process queue on the pool instead of sleeping in
  SQLite's busy handler; every transaction starts with ``BEGIN IMMEDIATE``, so two processes on one
  file (a backup, a second node in tests) wait for each other instead of failing half-way.
- **Scaled**: ``VITRINE_DATABASE_URL`` (``postgresql+asyncpg://...``), shared by every signaling node.

Stores open a transaction per operation with ``transaction()`` and never hold one across other I/O.
A caller that needs several stores' writes to commit together (a record and the webhook that tells the
shop about it) runs them inside ``unit()``: every ``transaction()`` of the same task inside it joins
the unit's one transaction, and ``after_commit`` callbacks run once it has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vitrine.core.config import Settings

logger = logging.getLogger(__name__)

SQLITE_FILE = "vitrine.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded SQLite file in the data directory."""
    if settings.database_url:
        return settings.database_url.get_secret_value()
    return f"sqlite+aiosqlite:///{Path(settings.data_dir).resolve() / SQLITE_FILE}"


def redacted(url: str) -> str:
    """The URL as it may be logged: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


class UnitAborted(RuntimeError):
    """A statement of a unit of work failed and its error was caught inside the unit: nothing was committed."""


@dataclass(eq=False)
class _Unit:
    """One open unit of work: its connection, the task that owns it, what to run after its commit."""

    db: Database
    conn: AsyncConnection
    owner: asyncio.Task[Any] | None
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    open: bool = True
    failed: bool = False


# The unit of work of the running task. Tasks started inside a unit copy this variable, so a unit is only
# joined by the task that opened it (``owner``): another task's transaction waits for the unit's commit.
_CURRENT_UNIT: ContextVar[_Unit | None] = ContextVar("vitrine_records_unit", default=None)


class Database:
    """One engine, and the transactions every record store runs in."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Commit on success, roll back on any error: nothing half-written is ever visible. Inside this task's
        ``unit()``, the unit's transaction: it commits with the unit."""
        unit = self._joinable()
        if unit is not None:
            try:
                yield unit.conn
            except BaseException:
                unit.failed = True  # PostgreSQL refuses the rest of a failed transaction: the unit cannot commit
                raise
            return
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        """One transaction for every store call this task makes inside: all of them commit, or none.

        A unit inside a unit joins it. Keep a unit to the writes that belong together: on SQLite it holds the
        process's one connection, so other tasks' records wait for it."""
        if self._joinable() is not None:
            yield
            return
        async with self.engine.begin() as conn:
            unit = _Unit(self, conn, asyncio.current_task())
            token = _CURRENT_UNIT.set(unit)
            try:
                yield
                if unit.failed:
                    raise UnitAborted("a statement of this unit of work failed; nothing was committed")
            finally:
                unit.open = False
                _CURRENT_UNIT.reset(token)
        for callback in unit.after_commit:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this task's unit of work has committed (never if it rolls back); at once outside
        a unit. For what must not see the unit's writes before others can (waking a delivery loop)."""
        unit = self._joinable()
        if unit is None:
            callback()
        else:
            unit.after_commit.append(callback)

    def _joinable(self) -> _Unit | None:
        unit = _CURRENT_UNIT.get()
        if unit is None or unit.db is not self or not unit.open or unit.owner is not asyncio.current_task():
            return None
        return unit

    async def scalar(self, query: sa.Executable) -> Any:
        """One value, in a transaction of its own."""
        async with self.transaction() as conn:
            return await conn.scalar(query)

    async def scalars(self, query: sa.Executable) -> list[Any]:
        async with self.transaction() as conn:
            return list(await conn.scalars(query))

    async def execute(self, statement: sa.Executable) -> sa.CursorResult[*tuple[Any, ...]]:  # rows of any shape
        async with self.transaction() as conn:
            return await conn.execute(statement)

    async def close(self) -> None:
        await self.engine.dispose()


def open_database(url: str, **engine_options: Any) -> Database:
    """An engine for ``url``; the SQLite file's folder is created on first start."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Database(_sqlite_engine(url, parsed.database, **engine_options))
    engine = create_async_engine(url, pool_pre_ping=True, **engine_options)
    return Database(engine)


def _sqlite_engine(url: str, path: str | None, **engine_options: Any) -> AsyncEngine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
    options.update(engine_options)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is turned off: ``_on_begin`` starts every transaction itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ForeignRecord(RuntimeError):
    """An id-keyed write named a record that belongs to another shop: nothing was written."""


def require_one_row(result: sa.CursorResult[Any], what: str, key: str) -> None:
    """An id-keyed upsert scoped to its shop changes one row, or the id is another shop's."""
    if result.rowcount != 1:
        raise ForeignRecord(f"{what} {key!r} belongs to another shop")


def upsert(db: Database, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for this database (SQLite and PostgreSQL spell it alike)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if db.dialect == "postgresql" else sqlite).insert(table)
