"""Real Vitrine servers for tests: in-process uvicorn on a free port, or separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from signaling.runtime import Runtime
from signaling.serving import uvicorn_options
from vitrine.core.auth import mint_token
from vitrine.core.config import Settings
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Role
from vitrine.embedded import Mode, create_app

TEST_SECRET = "test-secret-" + "x" * 40
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(**overrides: Any) -> Settings:
    """Test settings; the data, evidence and recordings folders are fresh temporary ones unless given."""
    values: dict[str, Any] = {
        "api_key": "testkey",
        "api_secret": TEST_SECRET,
        "port": free_port(),
        "rtc_interfaces": ["127.0.0.1"],
        "worker_heartbeat_s": 0.5,
        "worker_ttl_s": 2.0,
        "webhook_allowed_networks": ["127.0.0.0/8", "::1/128"],
    }  # tests' receivers
    for folder in ("recordings_dir", "evidence_dir", "data_dir"):
        if folder not in overrides:
            values[folder] = tempfile.mkdtemp(prefix=f"vitrine-{folder.removesuffix('_dir')}-")
    values.update(overrides)
    return Settings(**values)


@dataclass
class RunningServer:
    settings: Settings
    url: str
    runtime: Runtime | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/rtc"

    def token(
        self,
        room: str,
        identity: str,
        role: Role = Role.CUSTOMER,
        *,
        create: bool = True,
        grants: Grants | None = None,
        ttl_s: int | None = None,
    ) -> str:
        if grants is None:
            grants = ROLE_DEFAULT_GRANTS[role].model_copy(update={"room_create": create})
        return mint_token(self.settings, room=room, identity=identity, role=role, grants=grants, ttl_s=ttl_s)

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=(self.settings.api_key, TEST_SECRET), timeout=30)


@contextlib.asynccontextmanager
async def embedded_server(mode: Mode = "embedded", **overrides: Any) -> AsyncIterator[RunningServer]:
    """Serve the real app on a real socket inside the test's event loop."""
    settings = make_settings(**overrides)
    app = create_app(settings, mode)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on", **uvicorn_options(settings)
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield RunningServer(settings=settings, url=f"http://127.0.0.1:{settings.port}", runtime=app.state.runtime)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


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
