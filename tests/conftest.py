"""Shared fixtures.

Redis: ``redis_url`` is one server for the whole session (``REDIS_URL``, or a
throwaway ``redis-server`` started here); ``redis_db_url`` gives each test a
freshly flushed database of it, cycling 1..15, so tests never see each other's keys.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import redis

pytest_plugins = ["tests.worker_harness"]  # the `harness` fixture: a real MediaWorker with aiortc pages

_redis_dbs = itertools.cycle(range(1, 16))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server: ``REDIS_URL`` if set, else a redis-server started for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    from tests.servers import RedisProcess

    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(exe, os.X_OK):
        pytest.fail("redis-server not found: install it (apt-get install redis-server) or set REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="vitrine-redis-") as tmp:
        errors = []
        for _ in range(3):  # the free port can be taken between probing and binding
            try:
                server = RedisProcess.start(Path(tmp))
                break
            except RuntimeError as exc:
                errors.append(str(exc))
        else:
            pytest.fail("could not start redis-server:\n" + "\n".join(errors))
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def redis_db_url(redis_url: str) -> str:
    """``redis_url`` pointed at the next database (1..15), flushed for this test."""
    db = next(_redis_dbs)
    parts = urlsplit(redis_url)  # a ``db`` query parameter wins over the path, also for unix://
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
    url = urlunsplit(parts._replace(query=urlencode(query)))
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


# -- Vitrine servers ---------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def loopback_only_ice() -> None:
    """Test peers offer loopback candidates only: test traffic never leaves 127.0.0.1."""
    from media.taps import configure_host_candidates

    configure_host_candidates(["127.0.0.1"])


@pytest.fixture
async def server():
    """The embedded default (memory state, in-process worker) on a real socket."""
    from tests.servers import embedded_server

    async with embedded_server() as running:
        yield running


@pytest.fixture
async def browser(server):
    """Headless Debian Chromium (tests/browser_support.py: fails, never skips, when it is missing).

    Depends on ``server`` so it closes before the server stops.
    """
    from tests.browser_support import chromium  # imported here: it needs Playwright, most tests do not

    async with chromium() as instance:
        yield instance


# -- Records databases (vitrine.core.records) ----------------------------------------------
#
# ``postgres_url`` is one PostgreSQL server for the whole session (``VITRINE_TEST_DATABASE_URL``, or
# a throwaway server started here: tests/pg_support.py); ``pg_database_url`` gives each test a fresh,
# empty database on it. ``records`` is an opened ``Records`` on a fresh migrated database, once on
# the embedded SQLite and once on PostgreSQL.

_pg_databases = itertools.count(1)
_pg_session_tag = f"{os.getpid()}_{int(time.time()) % 100_000}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: needs a PostgreSQL server (VITRINE_TEST_DATABASE_URL, or one the tests start)"
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Base URL ``postgresql+asyncpg://USER@127.0.0.1:PORT/postgres`` of a server for the session."""
    from tests import pg_support

    if os.environ.get(pg_support.ENV_URL):
        yield os.environ[pg_support.ENV_URL]
        return
    failure = None
    try:
        server = pg_support.start_server()
    except pg_support.PostgresError as exc:
        failure = f"could not start PostgreSQL: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """URL of a fresh, empty database on ``postgres_url``, dropped after the test."""
    from tests import pg_support

    name = f"t_{_pg_session_tag}_{next(_pg_databases)}"
    url = pg_support.run_async(pg_support.create_database(postgres_url, name))
    try:
        yield url
    finally:
        pg_support.run_async(pg_support.drop_database(postgres_url, name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def records(request: pytest.FixtureRequest, tmp_path: Path):
    """An opened ``vitrine.core.records.Records`` on a fresh database at the head revision."""
    from signaling.records import open_records, records_on
    from vitrine.core.config import Settings
    from vitrine.core.records import migrate
    from vitrine.core.records.database import open_database

    if request.param == "sqlite":
        opened = await open_records(Settings(data_dir=str(tmp_path), database_url=None))
    else:
        db = open_database(request.getfixturevalue("pg_database_url"))
        try:
            await migrate.upgrade(db)
        except BaseException:
            await db.close()
            raise
        opened = records_on(db)
    try:
        yield opened
    finally:
        await opened.close()
