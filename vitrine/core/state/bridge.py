"""``BridgeServer``: the parent's end of the bridge to its media worker processes (``bridge_frames.py``).

It serves the parent's own coordination, memory or Redis, to each worker over one Unix-socket connection. A
connection is one worker's life: when it closes (the worker stopped, or was killed: the kernel closes its socket
at once), every subscription made on its behalf goes, and so does every registration it made. Its rooms are then
on a worker that is neither registered nor listening, which is how a dead worker looks to placement and to the
runtime's watchdog in a scaled deployment too, so its clients are moved the same way.

Deliveries are written without waiting: a publisher in the parent (the in-memory bus delivers inline) is never
held up by a worker that reads slowly. A worker so far behind that its unread frames pass
``MAX_UNREAD_BYTES`` is stuck, and its connection is closed like a dead worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

from pydantic import ValidationError

from vitrine.core.state.bridge_frames import (
    FRAME_LIMIT_BYTES,
    Answer,
    Delivery,
    Deregister,
    Epoch,
    Heartbeat,
    Hello,
    Listeners,
    Publish,
    Scrape,
    Subscribe,
    Unsubscribe,
    Welcome,
    WorkerFrame,
    WorkerRequest,
    encode,
    worker_frame_adapter,
)
from vitrine.core.state.bus import MessageHandler, Subscription
from vitrine.core.state.coordination import Coordination

logger = logging.getLogger(__name__)

MAX_UNREAD_BYTES = 64 * 1024 * 1024
SCRAPE_TIMEOUT_S = 2.0

WelcomeFor = Callable[[int], dict[str, object]]  # a slot's settings, as its worker is to run with them


class _WorkerConnection:
    """One worker process, as its parent sees it."""

    def __init__(self, server: BridgeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        self.slot: int | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.registered: set[str] = set()  # worker ids this connection's heartbeats registered
        self._asked: dict[int, asyncio.Future[Answer]] = {}
        self._ids = itertools.count(1)

    def send(self, frame: Welcome | Delivery | Scrape | Answer) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_UNREAD_BYTES:
            logger.error("media worker in slot %s stopped reading; closing its connection", self.slot)
            self.writer.close()
            return
        self.writer.write(encode(frame))

    async def ask_metrics(self) -> str | None:
        request = Scrape(id=next(self._ids))
        answer = self._asked[request.id] = asyncio.get_running_loop().create_future()
        try:
            self.send(request)
            async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                reply = await answer
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._asked.pop(request.id, None)
        return reply.value if isinstance(reply.value, str) else None

    async def serve(self) -> None:
        try:
            while line := await self.reader.readline():
                try:
                    frame = worker_frame_adapter.validate_json(line)
                except ValidationError:
                    logger.warning("dropped a malformed frame from the media worker in slot %s", self.slot)
                    continue
                await self._handle(frame)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a worker killed mid-frame, or one past FRAME_LIMIT_BYTES: either way it is gone
        finally:
            await self._forget()

    async def _handle(self, frame: WorkerFrame) -> None:
        if isinstance(frame, Answer):
            asked = self._asked.get(frame.id)
            if asked is not None and not asked.done():
                asked.set_result(frame)
            return
        if isinstance(frame, Hello):
            try:
                welcome = Welcome(settings=self.server.welcome_for(frame.slot))
            except LookupError:  # no such slot: not a worker this server started
                logger.warning("refused a bridge connection for unknown slot %d", frame.slot)
                self.writer.close()
                return
            self.slot = frame.slot
            self.send(welcome)
            return
        try:
            value = await self._answer(frame)
        except Exception as exc:  # the worker hears why; this loop and the other workers go on
            logger.exception("a request from the media worker in slot %s failed", self.slot)
            self.send(Answer(id=frame.id, error=type(exc).__name__))
            return
        self.send(Answer(id=frame.id, value=value))

    async def _answer(self, frame: WorkerRequest) -> int | str | None:
        coordination = self.server.coordination
        match frame:
            case Subscribe(channel=channel) if channel not in self.subscriptions:
                self.subscriptions[channel] = await coordination.bus.subscribe(channel, self._deliverer(channel))
            case Unsubscribe(channel=channel) if (subscription := self.subscriptions.pop(channel, None)) is not None:
                await subscription.close()
            case Publish(channel=channel, message=message):
                return await coordination.bus.publish(channel, message)
            case Listeners(channel=channel):
                return await coordination.bus.listeners(channel)
            case Heartbeat(node=node, ttl_s=ttl_s):
                self.registered.add(node.id)
                await coordination.nodes.heartbeat(node, ttl_s)
            case Deregister(worker_id=worker_id):
                self.registered.discard(worker_id)
                await coordination.nodes.remove(worker_id)
            case Epoch():
                return await coordination.epoch.current()
        return None

    def _deliverer(self, channel: str) -> MessageHandler:
        async def deliver(message: str) -> None:
            self.send(Delivery(channel=channel, message=message))

        return deliver

    async def _forget(self) -> None:
        """The worker is gone: nothing listens on its behalf, and it is registered nowhere."""
        self.writer.close()
        for subscription in self.subscriptions.values():
            with contextlib.suppress(Exception):
                await subscription.close()
        self.subscriptions.clear()
        for worker_id in self.registered:
            with contextlib.suppress(Exception):
                await self.server.coordination.nodes.remove(worker_id)
        if self.registered:
            logger.info("media worker(s) %s disconnected", ", ".join(sorted(self.registered)))
        for asked in self._asked.values():
            if not asked.done():
                asked.set_exception(ConnectionError("the media worker disconnected"))
        self.server.connections.discard(self)


class BridgeServer:
    """Listens on a Unix socket for the worker processes its owner started, and lends them ``coordination``."""

    def __init__(self, coordination: Coordination, welcome_for: WelcomeFor) -> None:
        self.coordination = coordination
        self.welcome_for = welcome_for
        self.connections: set[_WorkerConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path, limit=FRAME_LIMIT_BYTES)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _WorkerConnection(self, reader, writer)
        self.connections.add(connection)
        await connection.serve()

    async def metrics(self) -> list[str]:
        """Every connected worker's exposition (a worker that does not answer in time is left out)."""
        answers = await asyncio.gather(*(connection.ask_metrics() for connection in list(self.connections)))
        return [text for text in answers if text]

    async def close(self) -> None:
        """Stop listening and close every worker's connection: each worker closes its rooms and exits."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._server.wait_closed()
