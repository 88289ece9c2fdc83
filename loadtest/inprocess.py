"""A real Vitrine app served in this process: uvicorn on a free 127.0.0.1 port inside the caller's event loop.

For what must reach into the server while it runs (the records benchmark counts its database statements;
tests read its runtime). ``serve_app`` builds the app with a factory from the settings: by default the
server's own wiring (``vitrine.embedded.create_app``, the floor below this harness), or the caller's. For a
server in a process of its own, see ``loadtest.server.ServerProcess``.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from loadtest.server import free_port
from signaling.runtime import Runtime
from signaling.serving import uvicorn_options
from vitrine.core.auth import mint_token
from vitrine.core.config import Settings
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Role
from vitrine.embedded import create_app

TEST_SECRET = "test-secret-" + "x" * 40
TEST_API_KEY = "testkey"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

AppFactory = Callable[[Settings], FastAPI]


def make_settings(**overrides: Any) -> Settings:
    """Local settings; the data, evidence and recordings folders are fresh temporary ones unless given."""
    values: dict[str, Any] = {
        "api_key": TEST_API_KEY,
        "api_secret": TEST_SECRET,
        "port": free_port(),
        "rtc_interfaces": ["127.0.0.1"],
        "worker_heartbeat_s": 0.5,
        "worker_ttl_s": 2.0,
        # The worker runs in this process, where tests and in-process benchmarks read it (``runtime.media_worker``);
        # worker processes (`vitrine serve`'s default) are served by ``serve_app(media_workers=N)``.
        "media_workers": 0,
        "webhook_allowed_networks": ["127.0.0.0/8", "::1/128"],  # local webhook receivers
    }
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
        return httpx.AsyncClient(
            base_url=self.url, auth=(self.settings.api_key, self.settings.api_secret.get_secret_value()), timeout=30
        )


@contextlib.asynccontextmanager
async def serve_app(app_factory: AppFactory = create_app, **overrides: Any) -> AsyncIterator[RunningServer]:
    """Serve ``app_factory``'s app, built with ``make_settings(**overrides)``, on a real socket in this event loop."""
    settings = make_settings(**overrides)
    app = app_factory(settings)
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
        await asyncio.wait_for(task, STOP_TIMEOUT_S)
