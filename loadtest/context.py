"""What the agents of one harness worker process share: where tokens come from, the run's clock, HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from loadtest.config import RunConfig
from loadtest.scenarios import ClientSpec
from loadtest.source import prepare as prepare_source

TOKEN_TTL_S = 3600


class TokenSource:
    """Mints join tokens in-process (``--embedded``) or asks the server's API (``--url``)."""

    def __init__(self, base_url: str, api_key: str, api_secret: str, mint_locally: bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.mint_locally = mint_locally
        self._settings: Any = None
        self._http: Any = None

    def prepare(self) -> None:
        """Build what minting or fetching needs before the clock of any join starts."""
        if not self.mint_locally and self._http is None:
            import httpx

            self._http = httpx.AsyncClient(base_url=self.base_url, auth=(self.api_key, self.api_secret), timeout=30.0)
        if self.mint_locally and self._settings is None:
            from vitrine.core.auth import mint_token
            from vitrine.core.config import Settings
            from vitrine.core.models import Role

            self._settings = Settings(api_key=self.api_key, api_secret=self.api_secret)
            mint_token(self._settings, room="warm-up", identity="warm-up", role=Role.VIEWER, ttl_s=60)  # lazy imports

    def mint(self, spec: ClientSpec, identity: str) -> str:
        from vitrine.core.auth import mint_token
        from vitrine.core.models import Role

        self.prepare()
        return mint_token(self._settings, room=spec.room, identity=identity, role=Role(spec.role), ttl_s=TOKEN_TTL_S)

    async def get(self, spec: ClientSpec, identity: str) -> str:
        if self.mint_locally:
            return self.mint(spec, identity)
        self.prepare()
        response = await self._http.post(
            "/v1/tokens", json={"room": spec.room, "identity": identity, "role": spec.role, "ttl_s": TOKEN_TTL_S}
        )
        response.raise_for_status()
        return str(response.json()["token"])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class AgentContext:
    """What the agents of one worker process share."""

    def __init__(self, config: RunConfig, base_url: str, tokens: TokenSource, emit: Callable[[str, str], None]) -> None:
        loop = asyncio.get_running_loop()
        self.config = config
        self.base_url = base_url
        self.tokens = tokens
        self.emit = emit
        self.phase_start: dict[int, asyncio.Future[float]] = {0: loop.create_future(), 1: loop.create_future()}
        self.hold_end: asyncio.Future[float] = loop.create_future()
        self.http: Any = None  # WHIP/WHEP requests: one pool per process, built before any timed join
        if config.transport == "whip":
            import httpx

            self.http = httpx.AsyncClient(base_url=base_url, timeout=config.join_timeout_s)
        if config.source == "preencoded":  # encode the loops before the runner's go, not during a timed join
            prepare_source(config.video_width, config.video_height, config.fps, config.audio)

    def go(self, phase: int, start_at: float) -> None:
        future = self.phase_start.get(phase)
        if future is not None and not future.done():
            future.set_result(start_at)

    def set_hold_end(self, at: float) -> None:
        if not self.hold_end.done():
            self.hold_end.set_result(at)

    def abort(self, reason: str) -> None:
        for future in (*self.phase_start.values(), self.hold_end):
            if not future.done():
                future.set_exception(RuntimeError(reason))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.tokens.close()
