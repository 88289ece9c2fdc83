"""Real Vitrine servers for tests: in-process uvicorn on a free port, or separate processes.

The in-process server is the load harness's (loadtest/inprocess.py: the records benchmark uses it too); this
module gives it the app of ``vitrine.embedded``, which the harness, a floor below, does not import.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from loadtest.inprocess import (  # noqa: F401 - re-exported for the tests
    STARTUP_TIMEOUT_S,
    TEST_SECRET,
    RunningServer,
    make_settings,
    serve_app,
)
from loadtest.server import free_port
from vitrine.embedded import Mode, create_app


@contextlib.asynccontextmanager
async def embedded_server(mode: Mode = "embedded", **overrides: Any) -> AsyncIterator[RunningServer]:
    """Serve the real app on a real socket inside the test's event loop."""
    async with serve_app(lambda settings: create_app(settings, mode), **overrides) as server:
        yield server


class ProcessGroup:
    """``vitrine`` subcommands as child processes sharing one environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self._dir = Path(tempfile.mkdtemp(prefix="vitrine-procs-"))

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self._dir / f"{len(self.procs)}-{args[0]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vitrine.cli", *args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def output(self) -> str:
        """Every process's log, for a failing test's report."""
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in self.logs)

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcessGroup]:
        """Stop every process on the way out; on a failure, first print their logs into the report."""
        try:
            yield self
        except BaseException:
            self.stop()
            print(self.output())
            raise
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_healthy(url: str, group: ProcessGroup, timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            for proc in group.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a server process exited with {proc.returncode}:\n{group.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} was not healthy within {timeout}s")


class RedisProcess:
    """A redis-server of one test's own, run as compose runs it (no persistence), that it can restart empty."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, workdir: Path) -> RedisProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        redis = cls(workdir, free_port())
        redis._run()
        return redis

    def _run(self) -> None:
        import redis as redis_client

        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace') if log.exists() else ''}")
            try:
                with redis_client.Redis.from_url(self.url, socket_timeout=1) as client:
                    if client.ping():
                        return
            except redis_client.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {STARTUP_TIMEOUT_S}s")

    def restart(self) -> None:
        """SIGKILL, then start again on the same port: it comes back with nothing."""
        self.stop()
        self._run()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
