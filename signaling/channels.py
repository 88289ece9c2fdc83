"""The bus channels this node listens on, each subscribed once however many local listeners share it.

Rooms and shops each have a bus channel, and many sockets on one node may listen to the same one. The
bus hands every message to every subscription and nothing downstream drops repeats, so a second
subscription of a channel would deliver everything on it twice. Each channel therefore counts its
listeners, and is subscribed and unsubscribed under a lock of its own: two first listeners arriving
together, or the last one leaving while the subscribe is still in flight, leave one subscription while
anyone listens and none once nobody does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from vitrine.core.state.bus import EventBus, MessageHandler, Subscription

Deliver = Callable[[str, str], Awaitable[None]]  # (name, raw message): the owner's handling of one message


@dataclass
class _Channel:
    listeners: set[Hashable] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    subscription: Subscription | None = None
    busy: int = 0  # joins and leaves inside: the entry, and so its lock, lives until they are all out


class ChannelHub:
    """Named channels (a room, a shop) over ``bus``; ``channel_of`` gives a name's bus channel.

    Listeners are keys the owner chooses, mirroring its own map of who listens (a session id, a socket):
    joining twice with one key counts once, so the count cannot drift from the owner's map.
    """

    def __init__(self, bus: EventBus, channel_of: Callable[[str], str], deliver: Deliver) -> None:
        self.bus = bus
        self._channel_of = channel_of
        self._deliver = deliver
        self._channels: dict[str, _Channel] = {}

    async def join(self, name: str, listener: Hashable) -> None:
        """Count ``listener`` in; once this returns, the channel is subscribed.

        If the subscribe fails, the listener stays counted (its owner still holds it, and will leave):
        the next join tries again."""
        channel = self._channels.setdefault(name, _Channel())
        channel.listeners.add(listener)
        channel.busy += 1
        try:
            async with channel.lock:
                if channel.subscription is None and channel.listeners:  # nobody left while we waited
                    channel.subscription = await self.bus.subscribe(self._channel_of(name), self._handler(name))
        finally:
            channel.busy -= 1
            self._forget_if_idle(name, channel)

    async def leave(self, name: str, listener: Hashable) -> None:
        """Count ``listener`` out; the last one out unsubscribes, after any subscribe still in flight."""
        channel = self._channels.get(name)
        if channel is None or listener not in channel.listeners:
            return
        channel.listeners.discard(listener)
        channel.busy += 1
        try:
            async with channel.lock:
                if not channel.listeners and channel.subscription is not None:
                    subscription, channel.subscription = channel.subscription, None
                    await subscription.close()
        finally:
            channel.busy -= 1
            self._forget_if_idle(name, channel)

    def subscribed(self) -> list[str]:
        """The names whose channel this node is subscribed to."""
        return [name for name, channel in self._channels.items() if channel.subscription is not None]

    def listeners(self, name: str) -> int:
        channel = self._channels.get(name)
        return 0 if channel is None else len(channel.listeners)

    def _handler(self, name: str) -> MessageHandler:
        async def handle(raw: str) -> None:
            await self._deliver(name, raw)

        return handle

    def _forget_if_idle(self, name: str, channel: _Channel) -> None:
        """Drop an unused channel's entry; never while a join or leave holds or awaits its lock, or a later
        caller would take a fresh lock and subscribe beside it."""
        if not channel.busy and not channel.listeners and channel.subscription is None:
            if self._channels.get(name) is channel:
                del self._channels[name]
