"""``EventBus``: publish and subscribe, in process (embedded) or over Redis pub/sub (scaled).

Room events, consult desk pushes, worker RPC and offer pushes travel here. Nothing on the bus is a
record: a message that finds no subscriber is gone, and every publisher treats it that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from vitrine.core.state.redis_util import RedisClient
from vitrine.core.tasks import TaskSet

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 0.05  # a restarted Redis is back in well under a second: resubscribe at once
RECONNECT_MAX_S = 2.0

MessageHandler = Callable[[str], Awaitable[None]]


class Subscription(Protocol):
    async def close(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, channel: str, message: str) -> int:
        """Deliver to current subscribers; returns how many received it."""

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription: ...

    async def listeners(self, channel: str) -> int:
        """How many subscribers ``channel`` has now, without sending anything. On Redis, a process's subscription
        lasts as long as its connection: a busy process keeps it, a killed one loses it at once."""


HEARD_POLL_S = 0.1


async def publish_until_heard(bus: EventBus, channel: str, message: str, grace_s: float) -> bool:
    """Publish until a subscriber receives it; False if none did within ``grace_s``.

    A process whose pub/sub connection was cut (as when Redis restarts) resubscribes within moments, and
    meanwhile nobody hears its channel. Only for messages that nobody received when unheard, so sending them
    again cannot run anything twice."""
    deadline = asyncio.get_running_loop().time() + grace_s
    while not await bus.publish(channel, message):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(HEARD_POLL_S)
    return True


class _MemorySubscription:
    def __init__(self, bus: MemoryEventBus, channel: str, handler: MessageHandler) -> None:
        self._bus, self._channel, self._handler = bus, channel, handler

    async def close(self) -> None:
        self._bus._handlers[self._channel].discard(self._handler)


class MemoryEventBus:
    """Delivers in publish order, on the caller's loop, like a single Redis connection would.

    A failing handler is logged and skipped, as on Redis: one bad subscriber
    never breaks the publisher or the others.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, set[MessageHandler]] = defaultdict(set)

    async def publish(self, channel: str, message: str) -> int:
        handlers = list(self._handlers.get(channel, ()))
        for handler in handlers:
            try:
                await handler(message)
            except Exception:
                logger.exception("event handler on %s failed", channel)
        return len(handlers)

    async def subscribe(self, channel: str, handler: MessageHandler) -> _MemorySubscription:
        self._handlers[channel].add(handler)
        return _MemorySubscription(self, channel, handler)

    async def listeners(self, channel: str) -> int:
        return len(self._handlers.get(channel, ()))


_STOP = object()


class _Channel:
    """Handlers of one channel and the queue that feeds them in arrival order."""

    def __init__(self) -> None:
        self.handlers: dict[RedisSubscription, MessageHandler] = {}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


class RedisSubscription:
    def __init__(self, bus: RedisEventBus, channel: str, state: _Channel) -> None:
        self._bus, self._channel, self._state = bus, channel, state

    async def close(self) -> None:
        await self._bus._detach(self._channel, self._state, self)


class RedisEventBus:
    """One pub/sub connection per bus. A reader task routes messages into per-channel queues,
    each drained by its own task: order holds per channel, a slow handler delays only its
    channel, and handlers may (un)subscribe without deadlocking the reader."""

    def __init__(self, client: RedisClient) -> None:
        self._r = client
        self._pubsub = client.pubsub()
        self._channels: dict[str, _Channel] = {}  # channels that have handlers
        self._subscribed: dict[str, asyncio.Future[None]] = {}  # SUBSCRIBE sent -> its confirmation
        self._pending: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._send_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._tasks = TaskSet()  # the reader and one dispatcher per channel
        self._closed = False

    async def publish(self, channel: str, message: str) -> int:
        return int(await self._r.publish(channel, message))

    async def listeners(self, channel: str) -> int:
        counts = await self._r.pubsub_numsub(channel)  # [(channel, count)]
        return int(counts[0][1]) if counts else 0

    async def subscribe(self, channel: str, handler: MessageHandler) -> RedisSubscription:
        if self._closed:
            raise RuntimeError("event bus is closed")
        await self._start()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
            self._tasks.spawn(self._dispatch(channel, state))
        sub = RedisSubscription(self, channel, state)
        state.handlers[sub] = handler
        try:
            await self._sync(channel)
        except BaseException:
            with contextlib.suppress(Exception):
                await sub.close()
            raise
        return sub

    async def _sync(self, channel: str) -> None:
        """Make the server subscription match whether ``channel`` has handlers, and wait for the
        confirmation. Decided and sent under one lock, so an UNSUBSCRIBE never overtakes a later
        SUBSCRIBE of the same channel; Redis confirms in order, hence the FIFO per channel."""
        async with self._send_lock:
            want = channel in self._channels
            future = self._subscribed.get(channel)  # joining a SUBSCRIBE maybe still in flight
            if want != (future is not None):
                future = asyncio.get_running_loop().create_future()
                waiting = self._pending.setdefault(("subscribe" if want else "unsubscribe", channel), deque())
                waiting.append(future)
                try:
                    await (self._pubsub.subscribe(channel) if want else self._pubsub.unsubscribe(channel))
                except BaseException:
                    waiting.remove(future)  # not sent: keep later confirmations aligned
                    raise
                if want:
                    self._subscribed[channel] = future
                else:
                    del self._subscribed[channel]
        if future is not None:
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT_S)

    async def _detach(self, channel: str, state: _Channel, sub: RedisSubscription) -> None:
        if state.handlers.pop(sub, None) is None or state.handlers:
            return
        if self._channels.get(channel) is state:
            del self._channels[channel]
        state.queue.put_nowait(_STOP)  # the dispatcher ends itself: it may be the caller
        if not self._closed:
            await self._sync(channel)

    async def _start(self) -> None:
        """Connect on first subscribe, so a process that only publishes holds no pub/sub connection."""
        async with self._start_lock:
            if self._pubsub.connection is None:
                await self._pubsub.connect()
                self._tasks.spawn(self._read())

    async def _read(self) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis-py reconnects and resubscribes on the next read
                logger.warning("pub/sub read failed (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            if not message:
                continue
            kind, channel = message["type"], message["channel"]
            if kind == "message" and (state := self._channels.get(channel)) is not None:
                state.queue.put_nowait(message["data"])
            elif waiting := self._pending.get((kind, channel)):  # none after a reconnect's resubscribe
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
                if not waiting:
                    del self._pending[(kind, channel)]

    async def _dispatch(self, channel: str, state: _Channel) -> None:
        while (data := await state.queue.get()) is not _STOP:
            for sub, handler in list(state.handlers.items()):
                if sub not in state.handlers:  # closed by an earlier handler of this message
                    continue
                try:
                    await handler(data)
                except Exception:
                    logger.exception("event handler failed on channel %s", channel)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.cancel()
        for waiting in self._pending.values():
            for future in waiting:
                future.cancel()
        self._pending.clear()
        self._channels.clear()
        self._subscribed.clear()
        await self._pubsub.aclose()
