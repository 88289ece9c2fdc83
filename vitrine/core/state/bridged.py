"""A worker process's end of the bridge (``bridge_frames.py``): the coordination its parent lends it.

``open_bridge`` connects, says which slot it fills, and gets its settings back. ``Bridge.coordination`` then
gives the media worker what ``media.service.WorkerService`` asks of any coordination: an event bus, its
registration and the epoch, each a request to the parent.

When the parent goes (it stopped, or was killed: the kernel closes its end), ``closed`` is set and the worker
stops. From then on nothing it publishes is heard (``publish`` counts 0 receivers, which every publisher already
handles), and deregistering is done: the parent forgot this worker when the connection closed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

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
    WorkerRequest,
    encode,
    parent_frame_adapter,
)
from vitrine.core.state.bus import MessageHandler
from vitrine.core.state.nodes import WorkerNode
from vitrine.core.tasks import TaskSet, stop_tasks

logger = logging.getLogger(__name__)

Exposition = Callable[[], bytes]


class BridgeClosed(ConnectionError):
    """The parent is gone."""


class Bridge:
    """The connection to the parent: requests with their answers, deliveries to subscribers in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Answer]] = {}
        self._handlers: dict[str, set[MessageHandler]] = defaultdict(set)
        self._queues: dict[str, asyncio.Queue[str]] = {}
        self._drains = TaskSet()
        self._answering = TaskSet()
        self._reading: asyncio.Task[None] | None = None
        self.exposition: Exposition | None = None  # what a scrape answers; set once the worker exists
        self.closed = asyncio.Event()

    async def ask(self, make: Callable[[int], WorkerRequest]) -> int | str | None:
        if self.closed.is_set():
            raise BridgeClosed("the server that started this worker is gone")
        frame = make(next(self._ids))
        answer = self._waiting[frame.id] = asyncio.get_running_loop().create_future()
        try:
            self._writer.write(encode(frame))
            reply = await answer
        finally:
            self._waiting.pop(frame.id, None)
        if reply.error is not None:
            raise RuntimeError(f"the server refused a {frame.op}: {reply.error}")
        return reply.value

    async def welcome(self, slot: int) -> dict[str, object]:
        """Say which slot this is, and read the settings the parent sends back (before anything else runs)."""
        self._writer.write(encode(Hello(slot=slot)))
        line = await self._reader.readline()
        if not line:
            raise BridgeClosed("the server closed the bridge before welcoming this worker")
        frame = parent_frame_adapter.validate_json(line)
        if not isinstance(frame, Welcome):
            raise BridgeClosed(f"the server answered hello with {frame.op}")
        self._reading = asyncio.create_task(self._read())
        return frame.settings

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                try:
                    frame = parent_frame_adapter.validate_json(line)
                except ValidationError:
                    logger.warning("dropped a malformed frame from the server")
                    continue
                match frame:
                    case Answer(id=request_id) if (waiting := self._waiting.get(request_id)) is not None:
                        if not waiting.done():
                            waiting.set_result(frame)
                    case Delivery(channel=channel, message=message) if queue := self._queues.get(channel):
                        queue.put_nowait(message)
                    case Scrape(id=request_id):
                        self._answering.spawn(self._scrape(request_id))
        except (ConnectionError, ValueError):
            pass
        finally:
            self._lost()

    async def _scrape(self, request_id: int) -> None:
        text = self.exposition().decode() if self.exposition is not None else ""
        self._writer.write(encode(Answer(id=request_id, value=text)))

    def _lost(self) -> None:
        self.closed.set()
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(BridgeClosed("the server that started this worker is gone"))

    async def subscribe(self, channel: str, handler: MessageHandler) -> _Subscription:
        """Delivered in order per channel, each channel drained by its own task (as on Redis), so a handler that
        asks the parent something never waits on the reader it would need for the answer."""
        if channel not in self._queues:
            queue: asyncio.Queue[str] = asyncio.Queue()
            self._queues[channel] = queue
            self._drains.spawn(self._drain(channel, queue))
        if not self._handlers[channel]:  # the parent listens on this channel for as long as some handler does
            await self.ask(lambda i: Subscribe(id=i, channel=channel))
        self._handlers[channel].add(handler)
        return _Subscription(self, channel, handler)

    async def _drain(self, channel: str, queue: asyncio.Queue[str]) -> None:
        while True:
            message = await queue.get()
            for handler in list(self._handlers.get(channel, ())):
                try:
                    await handler(message)
                except Exception:
                    logger.exception("event handler on %s failed", channel)

    async def unsubscribe(self, channel: str, handler: MessageHandler) -> None:
        self._handlers[channel].discard(handler)
        if self._handlers[channel] or self.closed.is_set():
            return
        await self.ask(lambda i: Unsubscribe(id=i, channel=channel))

    async def close(self) -> None:
        self._writer.close()
        await stop_tasks(self._reading)
        self._lost()
        await self._drains.cancel()
        await self._answering.cancel()

    @property
    def coordination(self) -> BridgedCoordination:
        return BridgedCoordination(bus=BridgedBus(self), nodes=BridgedRegistration(self), epoch=BridgedEpoch(self))


class _Subscription:
    def __init__(self, bridge: Bridge, channel: str, handler: MessageHandler) -> None:
        self._bridge, self._channel, self._handler = bridge, channel, handler

    async def close(self) -> None:
        await self._bridge.unsubscribe(self._channel, self._handler)


class BridgedBus:
    """``EventBus`` through the parent."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    async def publish(self, channel: str, message: str) -> int:
        if self._bridge.closed.is_set():
            return 0  # nobody hears it: what a publisher on a bus that lost its subscribers sees
        return int(await self._bridge.ask(lambda i: Publish(id=i, channel=channel, message=message)) or 0)

    async def subscribe(self, channel: str, handler: MessageHandler) -> _Subscription:
        return await self._bridge.subscribe(channel, handler)

    async def listeners(self, channel: str) -> int:
        return int(await self._bridge.ask(lambda i: Listeners(id=i, channel=channel)) or 0)


class BridgedRegistration:
    """The worker's own registration (``WorkerRegistry``), written into the parent's ``NodeRegistry``."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        await self._bridge.ask(lambda i: Heartbeat(id=i, node=node, ttl_s=ttl_s))

    async def remove(self, worker_id: str) -> None:
        if not self._bridge.closed.is_set():  # else the parent has forgotten this worker already
            await self._bridge.ask(lambda i: Deregister(id=i, worker_id=worker_id))


class BridgedEpoch:
    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    async def current(self) -> str:
        return str(await self._bridge.ask(lambda i: Epoch(id=i)))


@dataclass
class BridgedCoordination:
    """What a worker process uses of coordination, all of it its parent's."""

    bus: BridgedBus
    nodes: BridgedRegistration
    epoch: BridgedEpoch


async def open_bridge(path: str) -> Bridge:
    reader, writer = await asyncio.open_unix_connection(path, limit=FRAME_LIMIT_BYTES)
    return Bridge(reader, writer)
