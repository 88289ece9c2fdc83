"""One bus subscription per channel per node, however many local listeners share it and however they race.

``ChannelHub`` on the memory bus (counting, concurrent first listeners, a last listener leaving while
the subscribe is in flight), the shop audience over it, and the issue's case end to end: two sessions
joining one room on one node at once, under Redis, each see each room event exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signaling.channels import ChannelHub
from signaling.consult.hub import Audience, ConsultHub, DeskPush
from tests.desk_helpers import WAIT_S, DeskClient
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role
from vitrine.core.state import keys
from vitrine.core.state.bus import MemoryEventBus, MessageHandler, Subscription


class GatedBus:
    """A memory bus that counts (un)subscribes, and whose subscribes wait for ``gate`` while it is closed:
    a subscribe held in flight, as a Redis round trip holds it."""

    def __init__(self) -> None:
        self.inner = MemoryEventBus()
        self.subscribes = 0
        self.closes = 0
        self.entered = asyncio.Event()  # a subscribe is waiting at the gate
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish(self, channel: str, message: str) -> int:
        return await self.inner.publish(channel, message)

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription:
        self.subscribes += 1
        self.entered.set()
        await self.gate.wait()
        return _Counted(self, await self.inner.subscribe(channel, handler))


class _Counted:
    def __init__(self, bus: GatedBus, inner: Subscription) -> None:
        self._bus, self._inner = bus, inner

    async def close(self) -> None:
        self._bus.closes += 1
        await self._inner.close()


def channel_of(name: str) -> str:
    return f"test:{name}"


class Owner:
    """The hub's owner: keeps every message handed to it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    async def deliver(self, name: str, raw: str) -> None:
        self.got.append((name, raw))


def make_hub() -> tuple[ChannelHub, GatedBus, Owner]:
    bus, owner = GatedBus(), Owner()
    return ChannelHub(bus, channel_of, owner.deliver), bus, owner


async def test_the_first_listener_subscribes_and_the_last_one_out_unsubscribes() -> None:
    hub, bus, owner = make_hub()
    await hub.join("r", "a")
    await hub.join("r", "b")
    await hub.join("r", "a")  # the same listener again counts once
    assert (bus.subscribes, hub.listeners("r"), hub.subscribed()) == (1, 2, ["r"])
    assert await bus.publish(channel_of("r"), "one") == 1
    await hub.leave("r", "a")
    await hub.leave("r", "a")  # already out: nothing changes
    assert (bus.closes, hub.subscribed()) == (0, ["r"])
    assert await bus.publish(channel_of("r"), "two") == 1
    await hub.leave("r", "b")
    assert (bus.subscribes, bus.closes, hub.subscribed(), hub.listeners("r")) == (1, 1, [], 0)
    assert await bus.publish(channel_of("r"), "three") == 0
    assert owner.got == [("r", "one"), ("r", "two")]  # each message handed over once
    await hub.join("r", "c")  # a channel emptied can be listened to again
    assert (bus.subscribes, hub.subscribed()) == (2, ["r"])


async def test_channels_are_counted_apart() -> None:
    hub, bus, owner = make_hub()
    await hub.join("r1", "a")
    await hub.join("r2", "a")
    await hub.leave("r1", "a")
    assert hub.subscribed() == ["r2"] and (bus.subscribes, bus.closes) == (2, 1)
    await bus.publish(channel_of("r1"), "lost")
    await bus.publish(channel_of("r2"), "heard")
    assert owner.got == [("r2", "heard")]


async def start_joins(hub: ChannelHub, bus: GatedBus, name: str, *listeners: str) -> list[asyncio.Task[None]]:
    """Joins of ``listeners`` started together, the first one's subscribe held at the closed gate."""
    bus.gate.clear()
    tasks = [asyncio.create_task(hub.join(name, listener)) for listener in listeners]
    await asyncio.wait_for(bus.entered.wait(), WAIT_S)
    assert hub.listeners(name) == len(listeners)  # every join has begun: the others wait for the first
    return tasks


async def test_concurrent_first_listeners_subscribe_once() -> None:
    hub, bus, owner = make_hub()
    joins = await start_joins(hub, bus, "r", "a", "b", "c")
    assert bus.subscribes == 1 and not any(task.done() for task in joins)  # nobody returns before it listens
    bus.gate.set()
    await asyncio.wait_for(asyncio.gather(*joins), WAIT_S)
    assert (bus.subscribes, hub.subscribed()) == (1, ["r"])
    assert await bus.publish(channel_of("r"), "once") == 1
    assert owner.got == [("r", "once")]


async def test_the_last_listener_leaving_while_the_subscribe_is_in_flight_unsubscribes() -> None:
    hub, bus, owner = make_hub()
    (joining,) = await start_joins(hub, bus, "r", "a")
    leaving = asyncio.create_task(hub.leave("r", "a"))
    bus.gate.set()
    await asyncio.wait_for(asyncio.gather(joining, leaving), WAIT_S)
    assert (bus.subscribes, bus.closes, hub.subscribed(), hub.listeners("r")) == (1, 1, [], 0)
    assert await bus.publish(channel_of("r"), "nobody") == 0 and owner.got == []


async def test_a_listener_arriving_behind_a_leaving_one_keeps_the_one_subscription() -> None:
    hub, bus, owner = make_hub()
    (joining,) = await start_joins(hub, bus, "r", "a")
    leaving = asyncio.create_task(hub.leave("r", "a"))
    arriving = asyncio.create_task(hub.join("r", "b"))
    bus.gate.set()
    await asyncio.wait_for(asyncio.gather(joining, leaving, arriving), WAIT_S)
    assert (bus.subscribes, bus.closes, hub.subscribed(), hub.listeners("r")) == (1, 0, ["r"], 1)
    assert await bus.publish(channel_of("r"), "for b") == 1 and owner.got == [("r", "for b")]


async def test_a_failed_subscribe_is_tried_again_by_the_next_listener() -> None:
    hub, bus, _ = make_hub()

    async def refuse(channel: str, handler: MessageHandler) -> Subscription:
        raise ConnectionError("bus down")

    working = bus.subscribe
    bus.subscribe = refuse  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await hub.join("r", "a")
    assert hub.subscribed() == [] and hub.listeners("r") == 1  # its owner still holds it, and will leave
    bus.subscribe = working  # type: ignore[method-assign]
    await hub.join("r", "b")
    assert hub.subscribed() == ["r"]
    await hub.leave("r", "a")
    await hub.leave("r", "b")
    assert hub.subscribed() == [] and bus.closes == 1


class Socket:
    def __init__(self) -> None:
        self.pushed: list[str] = []

    def push_raw(self, raw: str) -> None:
        self.pushed.append(raw)


async def test_a_shop_listens_while_any_desk_socket_does() -> None:
    bus = GatedBus()
    hub = ConsultHub(bus)
    console, first, second = Socket(), Socket(), Socket()
    bus.gate.clear()
    attaching = [
        asyncio.create_task(hub.attach_agent("acme", "ann", console)),
        asyncio.create_task(hub.attach_shopper("acme", "T1", first)),
    ]
    await asyncio.wait_for(bus.entered.wait(), WAIT_S)
    bus.gate.set()
    await asyncio.wait_for(asyncio.gather(*attaching), WAIT_S)
    await hub.attach_shopper("acme", "T1", second)  # the shopper reconnected: the new socket takes over
    await hub.detach_shopper("acme", "T1", first)  # the old socket's late goodbye changes nothing
    assert (bus.subscribes, hub.local_shops(), hub.has_shopper("acme", "T1")) == (1, ["acme"], True)
    await hub.send(
        "acme", [DeskPush(to=Audience.TICKET, id="T1", payload="p1"), DeskPush(to=Audience.AGENTS, payload="p2")]
    )
    assert (first.pushed, second.pushed, console.pushed) == ([], ["p1"], ["p2"])
    await hub.detach_agent("acme", "ann", console)
    assert hub.local_shops() == ["acme"] and hub.local_consoles() == []
    await hub.detach_shopper("acme", "T1", second)
    assert (hub.local_shops(), bus.closes) == ([], 1)


# -- the issue: two joins to one room on one node, under Redis ----------------------------------------

ROOM = "race-1"


@pytest.fixture
async def redis_server(redis_db_url: str) -> AsyncIterator[RunningServer]:
    async with embedded_server(redis_url=redis_db_url) as running:
        yield running


async def join(server: RunningServer, identity: str) -> DeskClient:
    socket = await DeskClient.connect(server.ws_url)
    await socket.send({"type": "join", "token": server.token(ROOM, identity, Role.CUSTOMER, create=False)})
    await socket.expect("joined")
    return socket


def hold_the_room_subscribe_until_both_attach(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the race certain rather than likely: the first join's subscribe of the room channel (a Redis
    round trip) stays in flight until the second join has registered with the hub too."""
    assert server.runtime is not None
    hub, bus = server.runtime.hub, server.runtime.hub.bus
    both_attaching = asyncio.Event()
    attaching = 0
    real_attach, real_subscribe = hub.attach, bus.subscribe

    async def attach(room: str, sid: str, session: Any) -> None:
        nonlocal attaching
        attaching += 1
        if attaching == 2:
            both_attaching.set()
        await real_attach(room, sid, session)

    async def subscribe(channel: str, handler: MessageHandler) -> Subscription:
        if channel == keys.room_events_channel(ROOM):
            await asyncio.wait_for(both_attaching.wait(), WAIT_S)
        return await real_subscribe(channel, handler)

    monkeypatch.setattr(hub, "attach", attach)
    monkeypatch.setattr(bus, "subscribe", subscribe)


@pytest.mark.redis
async def test_two_concurrent_joins_on_one_node_see_each_event_once(
    redis_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with redis_server.api() as api:
        (await api.post("/v1/rooms", json={"name": ROOM, "max_participants": 10})).raise_for_status()
    hold_the_room_subscribe_until_both_attach(redis_server, monkeypatch)
    pair = await asyncio.gather(join(redis_server, "ana"), join(redis_server, "bea"))
    marks = [socket.mark() for socket in pair]
    for guest in ("gus", "gil", "gwen"):  # each comes and goes: two room events apiece
        visitor = await join(redis_server, guest)
        await visitor.close()
    last = 0
    for socket, mark in zip(pair, marks, strict=True):
        left = await socket.expect("event", lambda m: m["event"] == "participant_left", after=mark, count=3)
        last = max(last, left["seq"])
    for socket, mark in zip(pair, marks, strict=True):
        # everything sent before the first copy of the last event; a second copy of any would be in it
        received = socket.received[mark:]
        upto = next(i for i, m in enumerate(received) if m.get("type") == "event" and m["seq"] == last)
        events = [m for m in received[: upto + 1] if m.get("type") == "event"]
        guests = [m for m in events if m["participant"]["identity"] not in ("ana", "bea")]
        counts = Counter((m["event"], m["participant"]["identity"]) for m in guests)
        assert counts == {(e, g): 1 for g in ("gus", "gil", "gwen") for e in ("participant_joined", "participant_left")}
        assert [m["seq"] for m in events] == sorted({m["seq"] for m in events})  # no seq twice, in order
    for socket in pair:
        await socket.close()
