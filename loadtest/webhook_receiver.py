"""A shop's webhook endpoint for the tests and the records benchmark: a real HTTP server (uvicorn on 127.0.0.1)
that records every request."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from loadtest.server import free_port

DEADLINE_S = 30.0


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


Responder = Callable[[dict[str, Any]], int | Awaitable[int]]


class Receiver:
    """A shop's webhook endpoint: records every request and answers what ``respond`` returns."""

    def __init__(self) -> None:
        self.url = ""
        self.hits: list[Hit] = []
        self.respond: Responder = lambda event: 200
        self.release = asyncio.Event()  # set at teardown: frees handlers told to hang
        self._changed = asyncio.Condition()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        status = self.respond(json.loads(body))
        status = await status if inspect.isawaitable(status) else status
        async with self._changed:  # recorded before answering: the sender acks only after the answer
            self.hits.append(Hit({k.decode().lower(): v.decode() for k, v in scope["headers"]}, body, status))
            self._changed.notify_all()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), DEADLINE_S)
            except TimeoutError:
                raise AssertionError(
                    f"receiver: timed out waiting for {what}; got {[h.status for h in self.hits]}"
                ) from None

    def delivered(self) -> list[dict[str, Any]]:
        """Events answered with a 2xx, in arrival order."""
        return [hit.event for hit in self.hits if 200 <= hit.status < 300]

    def attempts(self, event_id: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.headers["vitrine-delivery"] == event_id]


@contextlib.asynccontextmanager
async def serve_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        assert time.monotonic() < deadline, "the receiver did not start"
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hooks/vitrine"
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE_S)
