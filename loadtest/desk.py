"""Consult desk helpers: a shop that is always open, and real desk sockets driven from Python (for the tests and
the records benchmark)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets

from loadtest.inprocess import RunningServer
from vitrine.core.shops import WEEKDAYS

WAIT_S = 20.0
ALWAYS_OPEN = [{"day": day.value, "opens": "00:00", "closes": "24:00"} for day in WEEKDAYS]


async def make_shop(
    server: RunningServer,
    shop: str = "acme",
    *,
    agents: dict[str, list[str]] | None = None,
    hours: list[dict[str, str]] | None = None,
    **fields: Any,
) -> None:
    """A shop with ``agents`` (id -> languages) and two products on https://acme.example."""
    body = {
        "id": shop,
        "name": shop.title(),
        "allowed_origins": [f"https://{shop}.example"],
        "opening_hours": ALWAYS_OPEN if hours is None else hours,
        **fields,
    }
    async with server.api() as api:
        (await api.post("/v1/shops", json=body)).raise_for_status()
        for agent, languages in (agents or {"ann": ["en"]}).items():
            (
                await api.put(
                    f"/v1/shops/{shop}/agents/{agent}", json={"display_name": agent.title(), "languages": languages}
                )
            ).raise_for_status()
        for sku, price in (("mug-1", "12.50"), ("lamp-2", "89.00")):
            (
                await api.put(
                    f"/v1/shops/{shop}/products/{sku}",
                    json={
                        "title": sku.replace("-", " ").title(),
                        "price": price,
                        "currency": "EUR",
                        "url": f"https://{shop}.example/p/{sku}",
                        "image_url": f"https://{shop}.example/i/{sku}.jpg",
                    },
                )
            ).raise_for_status()


async def agent_token(server: RunningServer, shop: str, agent: str) -> str:
    async with server.api() as api:
        response = await api.post(f"/v1/shops/{shop}/agents/{agent}/token")
        response.raise_for_status()
        return response.json()["token"]


@dataclass
class DeskClient:
    """One WebSocket (a desk socket, or /v1/rtc). Every received message is kept, so a test can wait
    for one that came earlier."""

    ws: Any
    received: list[dict[str, Any]] = field(default_factory=list)
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, server: RunningServer, side: str, origin: str | None = None) -> DeskClient:
        return await cls.connect(server.url.replace("http://", "ws://") + f"/v1/consult/{side}", origin)

    @classmethod
    async def connect(cls, url: str, origin: str | None = None) -> DeskClient:
        headers = {"Origin": origin} if origin else None
        client = cls(ws=await websockets.connect(url, additional_headers=headers, open_timeout=WAIT_S))
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.received.append(json.loads(raw))
                self._new.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._new.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    async def expect(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda m: True,
        *,
        after: int = 0,
        count: int = 1,
        timeout: float = WAIT_S,
    ) -> dict[str, Any]:
        """The ``count``-th message of ``kind`` matching ``where`` at index ``after`` or later."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matches = [m for m in self.received[after:] if m.get("type") == kind and where(m)]
            if len(matches) >= count:
                return matches[count - 1]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or (self._reader is not None and self._reader.done()):
                seen = [m.get("type") for m in self.received]
                raise AssertionError(
                    f"no {kind!r} message (closed={self._reader.done() if self._reader else None});"
                    f" got {seen}: {self.received[-3:]}"
                )
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def mark(self) -> int:
        """An index for ``expect(after=...)``: only what arrives from now on."""
        return len(self.received)

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


async def login_agent(server: RunningServer, shop: str, agent: str, *, available: bool = True) -> DeskClient:
    console = await DeskClient.open(server, "agent")
    await console.send({"type": "login", "token": await agent_token(server, shop, agent)})
    await console.expect("welcome")
    if available:
        mark = console.mark()
        await console.send({"type": "set_status", "status": "available"})
        await console.expect("status", lambda m: m["status"] == "available", after=mark)
    return console


async def enter_shopper(server: RunningServer, shop: str = "acme", **context: Any) -> DeskClient:
    shopper = await DeskClient.open(server, "shopper", origin=f"https://{shop}.example")
    await shopper.send({"type": "enter", "shop": shop, "context": context})
    return shopper
