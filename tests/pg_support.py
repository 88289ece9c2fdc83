"""PostgreSQL for the tests: a throwaway server for the session, and a fresh database per test.

``VITRINE_TEST_DATABASE_URL`` (``postgresql+asyncpg://user[:password]@host:port/postgres``) points the
tests at a server of your own; its user must be allowed to ``CREATE DATABASE``. Otherwise
``start_server`` runs Debian's ``initdb`` and ``pg_ctl`` (PATH or ``/usr/lib/postgresql/*/bin``) in a
temporary folder, on a free 127.0.0.1 port, with trust authentication. ``initdb`` and ``postgres``
refuse to run as root, so under root they run as the unprivileged ``postgres`` user (created by the
Debian package), which owns the folder.

Everything async here runs on a private event loop in its own thread (``run_async``), so the
fixtures work whether or not a test's loop is running when pytest sets them up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

ENV_URL = "VITRINE_TEST_DATABASE_URL"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 5.0

T = TypeVar("T")


class PostgresError(RuntimeError):
    """The server could not be started or reached; the message carries its log."""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh event loop in another thread, and return its result."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-support") as pool:
        return pool.submit(asyncio.run, coro).result()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_bin(name: str) -> str:
    """``initdb``/``pg_ctl`` on PATH, else the newest Debian ``/usr/lib/postgresql/<major>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")

    def major(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else 0

    for path in sorted(candidates, key=major, reverse=True):
        if os.access(path, os.X_OK):
            return path
    raise PostgresError(
        f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin: "
        "run scripts/install-system-deps (Debian package `postgresql`) "
        f"or set {ENV_URL}"
    )


@dataclass
class _Runner:
    """Runs the server's programs as an unprivileged user: ``postgres`` under root, else oneself."""

    user: str | None  # None: as the current user
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)

    @classmethod
    def for_current_user(cls) -> _Runner:
        if os.geteuid() != 0:
            return cls(user=None)
        try:
            entry = pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise PostgresError(
                "running as root, and there is no `postgres` user to run the server as "
                "(the Debian package `postgresql` creates it)"
            ) from exc
        return cls(user=SUPERUSER, uid=entry.pw_uid, gid=entry.pw_gid)

    def command(self, argv: list[str]) -> list[str]:
        if self.user is None:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *argv]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *argv]

    def run(self, argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.setdefault("LC_ALL", "C")
        return subprocess.run(
            self.command(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class PostgresServer:
    """A running throwaway server; ``stop`` shuts it down and removes its folder."""

    url: str
    port: int
    workdir: Path
    runner: _Runner
    pg_ctl: str

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def logfile(self) -> Path:
        return self.workdir / f"server-{self.port}.log"  # one per attempt: a retry reads only its own

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError as exc:
            return f"(no server log: {exc})"

    def stop(self) -> None:
        try:
            result = self.runner.run(
                [self.pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S)],
                cwd=self.workdir,
                timeout=STOP_TIMEOUT_S + 10,
            )
            if result.returncode != 0 and self._postmaster_pid() is not None:
                _stop_if_running(self)  # never leave a server behind on a deleted folder
                raise PostgresError(f"pg_ctl stop -m fast failed ({result.returncode}): {result.stdout}{result.stderr}")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            return int(first)
        except (OSError, IndexError, ValueError):
            return None


def base_url(user: str, port: int, host: str = "127.0.0.1", password: str | None = None) -> str:
    return URL.create(
        "postgresql+asyncpg", username=user, password=password, host=host, port=port, database="postgres"
    ).render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _asyncpg_params(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    params: dict[str, Any] = {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host,
        "port": parsed.port,
        "database": parsed.database,
    }
    if "host" in parsed.query:  # ?host=/run/postgresql: a unix socket folder
        params["host"] = parsed.query["host"]
    return {key: value for key, value in params.items() if value is not None}


async def connect(url: str, timeout: float = CONNECT_TIMEOUT_S) -> asyncpg.Connection:
    """A raw asyncpg connection to the database of a SQLAlchemy-style URL."""
    return await asyncpg.connect(timeout=timeout, **_asyncpg_params(url))


async def _ping(url: str) -> None:
    conn = await connect(url)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_once(workdir: Path, runner: _Runner, pg_ctl: str) -> PostgresServer:
    port = _free_port()
    server = PostgresServer(url=base_url(SUPERUSER, port), port=port, workdir=workdir, runner=runner, pg_ctl=pg_ctl)
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={workdir / 'sock'} -c max_connections=200"
    )
    # -w: pg_ctl returns once the postmaster reports ready, or at once with an error if it died on the way.
    started = runner.run(
        [
            pg_ctl,
            "start",
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "-D",
            str(server.datadir),
            "-l",
            str(server.logfile),
            "-o",
            options,
        ],
        cwd=workdir,
        timeout=START_TIMEOUT_S + 10,
    )
    if started.returncode != 0:
        _stop_if_running(server)
        log = server.log()
        if "could not create any TCP/IP sockets" in log:  # the port was taken since we probed it
            raise PostgresError(f"port {port} was taken:\n{log}")
        raise PostgresError(
            f"pg_ctl start failed ({started.returncode}): {started.stdout}{started.stderr}\nserver log:\n{log}"
        )
    # Ready means a client gets in: connect over TCP as the tests will, until a deadline.
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            run_async(_ping(server.url))
            return server
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # TimeoutError is an OSError
            last_error = exc
        pid = server._postmaster_pid()
        if pid is None or not _pid_alive(pid):
            raise PostgresError(
                f"postgres on port {port} exited before accepting connections "
                f"(last error: {last_error!r}):\n{server.log()}"
            )
        time.sleep(0.1)  # a poll interval, bounded by the deadline above
    _stop_if_running(server)
    raise PostgresError(
        f"postgres on port {port} did not accept connections within {START_TIMEOUT_S}s "
        f"(last error: {last_error!r}):\n{server.log()}"
    )


def _stop_if_running(server: PostgresServer) -> None:
    server.runner.run(
        [server.pg_ctl, "stop", "-D", str(server.datadir), "-m", "immediate", "-w"],
        cwd=server.workdir,
        timeout=STOP_TIMEOUT_S,
    )


def start_server(attempts: int = 3) -> PostgresServer:
    """initdb in a fresh temporary folder, then start the server on a free port and wait until it answers."""
    runner = _Runner.for_current_user()
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-pg-"))
    try:
        os.chown(workdir, runner.uid, runner.gid)
        (workdir / "sock").mkdir()
        os.chown(workdir / "sock", runner.uid, runner.gid)
        result = runner.run(
            [
                initdb,
                "-D",
                str(workdir / "data"),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=workdir,
            timeout=START_TIMEOUT_S * 2,
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        errors = []
        for _ in range(attempts):  # the free port can be taken between probing and binding
            try:
                return _start_once(workdir, runner, pg_ctl)
            except PostgresError as exc:
                errors.append(str(exc))
                if "was taken" not in str(exc):
                    break
        raise PostgresError("\n\n".join(errors))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


async def create_database(base: str, name: str) -> str:
    """``CREATE DATABASE name`` on the server of ``base``; returns the new database's URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    conn = await connect(base)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return with_database(base, name)


async def drop_database(base: str, name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    conn = await connect(base)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()
