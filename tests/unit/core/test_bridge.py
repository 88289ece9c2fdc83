"""The bridge between ``vitrine serve`` and its worker processes (``vitrine/core/state/bridge.py``, ``bridged.py``),
both ends in this process over a real Unix socket, lending a real in-memory coordination.

A worker's subscriptions and registrations last exactly as long as its connection; a malformed frame is dropped
and the connection goes on; a request the parent cannot serve is answered with why, not left hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.durability_helpers import until
from vitrine.core.config import Settings
from vitrine.core.state import Coordination, open_coordination
from vitrine.core.state.bridge import BridgeServer
from vitrine.core.state.bridge_frames import Answer, Listeners, encode, parent_frame_adapter
from vitrine.core.state.bridged import Bridge, BridgeClosed, open_bridge
from vitrine.core.state.nodes import WorkerNode

SECRET = "a-long-enough-secret-for-these-tests-0123456789"
WAIT_S = 10.0


@pytest.fixture
async def lent(tmp_path: Path) -> AsyncIterator[tuple[Coordination, BridgeServer, str]]:
    coordination = await open_coordination(Settings(api_secret=SECRET))
    server = BridgeServer(coordination, lambda slot: [{"slot": 0}, {"slot": 1}, {"slot": 2}][slot])
    path = str(tmp_path / "bridge.sock")
    await server.start(path)
    try:
        yield coordination, server, path
    finally:
        await server.close()
        await coordination.close()


async def welcomed(path: str, slot: int = 0) -> Bridge:
    bridge = await open_bridge(path)
    assert await bridge.welcome(slot) == {"slot": slot}
    return bridge


async def test_a_worker_hears_what_the_parent_publishes_and_is_heard(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    coordination, _, path = lent
    bridge = await welcomed(path)
    heard: asyncio.Queue[str] = asyncio.Queue()
    parent_heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await bridge.coordination.bus.subscribe("to-worker", lambda m: heard.put(m))
        await coordination.bus.subscribe("to-parent", lambda m: parent_heard.put(m))
        assert await coordination.bus.listeners("to-worker") == 1  # the worker's subscription, held by the parent
        assert await coordination.bus.publish("to-worker", "one") == 1
        assert await coordination.bus.publish("to-worker", "two") == 1
        assert [await asyncio.wait_for(heard.get(), WAIT_S) for _ in range(2)] == ["one", "two"]  # in order
        assert await bridge.coordination.bus.publish("to-parent", "up") == 1
        assert await asyncio.wait_for(parent_heard.get(), WAIT_S) == "up"
        assert await bridge.coordination.bus.publish("nobody", "lost") == 0
        assert await bridge.coordination.epoch.current() == await coordination.epoch.current()
    finally:
        await bridge.close()


async def test_a_disconnected_worker_leaves_no_subscription_or_registration(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    coordination, _, path = lent
    bridge = await welcomed(path)
    await bridge.coordination.bus.subscribe("worker:rpc", lambda m: asyncio.sleep(0))
    await bridge.coordination.nodes.heartbeat(WorkerNode(id="w-media", max_rooms=10), ttl_s=60)
    assert await coordination.nodes.get("w-media") is not None
    await bridge.close()  # as a SIGKILL would: the kernel closes the socket

    async def forgotten() -> bool:
        return await coordination.nodes.get("w-media") is None and await coordination.bus.listeners("worker:rpc") == 0

    await until(forgotten, "the parent should forget a worker whose connection closed", timeout=WAIT_S)


async def test_a_malformed_frame_is_dropped_and_the_connection_goes_on(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    _, server, path = lent
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        for garbage in (b"not json\n", b'{"op": "publish"}\n', b'{"op": "launch", "id": 1}\n', b"[]\n"):
            writer.write(garbage)
        writer.write(encode(Listeners(id=7, channel="nobody")))
        answer = parent_frame_adapter.validate_json(await asyncio.wait_for(reader.readline(), WAIT_S))
        assert answer == Answer(id=7, value=0)  # the first answer: nothing was answered for the garbage
        assert len(server.connections) == 1
    finally:
        writer.close()


async def test_a_worker_sees_its_parent_go(lent: tuple[Coordination, BridgeServer, str]) -> None:
    _, server, path = lent
    bridge = await welcomed(path)
    await server.close()
    await asyncio.wait_for(bridge.closed.wait(), WAIT_S)
    assert await bridge.coordination.bus.publish("anything", "unheard") == 0
    await bridge.coordination.nodes.remove("w-media")  # nothing to do: the parent forgot it
    with pytest.raises(BridgeClosed):
        await bridge.coordination.epoch.current()
    await bridge.close()


async def test_the_parent_reads_each_workers_metrics(lent: tuple[Coordination, BridgeServer, str]) -> None:
    _, server, path = lent
    first, second, silent = await welcomed(path, 0), await welcomed(path, 1), await welcomed(path, 2)
    first.exposition = lambda: b"a_total 1\n"
    second.exposition = lambda: b"b_total 2\n"
    try:

        async def all_connected() -> bool:
            return len(server.connections) == 3

        await until(all_connected, "three workers should be connected", timeout=WAIT_S)
        # A worker with nothing to show yet answers empty and is left out.
        assert sorted(await server.metrics()) == ["a_total 1\n", "b_total 2\n"]
    finally:
        for bridge in (first, second, silent):
            await bridge.close()


class _LostRegistry:
    """A registry whose store has gone away (as a Redis that is down): every write fails."""

    async def heartbeat(self, node: WorkerNode, ttl_s: float) -> None:
        raise ConnectionError("the registry is unreachable")

    async def remove(self, worker_id: str) -> None:
        raise ConnectionError("the registry is unreachable")


async def test_a_request_the_parent_cannot_serve_is_answered_with_why(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    coordination, _, path = lent
    coordination.nodes = _LostRegistry()  # type: ignore[assignment]
    bridge = await welcomed(path)
    try:
        with pytest.raises(RuntimeError, match="ConnectionError"):
            await bridge.coordination.nodes.heartbeat(WorkerNode(id="w-media"), ttl_s=60)
        assert await bridge.coordination.bus.listeners("still-served") == 0  # the connection goes on
    finally:
        await bridge.close()


async def test_a_connection_for_a_slot_the_server_never_started_is_closed(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    _, server, path = lent
    bridge = await open_bridge(path)
    with pytest.raises(BridgeClosed):
        await bridge.welcome(7)
    own = await welcomed(path, 1)  # the server goes on welcoming its own

    async def forgotten() -> bool:
        return len(server.connections) == 1

    try:
        await until(forgotten, "the refused connection should be gone", timeout=WAIT_S)
    finally:
        await own.close()
        await bridge.close()


async def test_a_channel_given_up_and_subscribed_again_is_heard_again(
    lent: tuple[Coordination, BridgeServer, str],
) -> None:
    coordination, _, path = lent
    bridge = await welcomed(path)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        first = await bridge.coordination.bus.subscribe("again", lambda m: heard.put(m))
        await first.close()
        assert await coordination.bus.listeners("again") == 0  # the parent stopped listening for it
        await bridge.coordination.bus.subscribe("again", lambda m: heard.put(m))
        assert await coordination.bus.listeners("again") == 1
        assert await coordination.bus.publish("again", "back") == 1
        assert await asyncio.wait_for(heard.get(), WAIT_S) == "back"
    finally:
        await bridge.close()
