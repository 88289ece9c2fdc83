"""Admission that never starves (issue 17): a burst of viewers joining one room at once all get in and decode
video, over WHEP and over ``/v1/rtc``, while the media worker connects at most ``max_handshakes_per_worker`` of
them at a time (``media/admission.py``). A join that waits its turn is told so (``queued``) and then joins; a
WHEP request that waits is held and then answered; a full line is refused with ``503 worker_busy`` and
``Retry-After``.

Burst size: the issue's burst is 150 viewers. Here the server, the publisher and every viewer are real aiortc
peers on the test's one event loop, and 150 of them take several minutes on a loaded 2-core CI machine, so the
suite joins ``BURST`` (60), which runs in well under a minute there; the 150 are the benchmark's
(``python -m loadtest.bench.join_burst --viewers 150``). The bound is small (``LIMIT``); how many of a burst
wait depends on how fast signaling lets them through, so the line itself is tested deterministically in the
last test, and the bursts check that nobody is lost and the bound is never passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets
from av import VideoFrame

from loadtest.client import VitrineClient
from loadtest.whip_client import WhipError, WhipSession
from media import taps
from media.admission import HandshakeGate
from tests.media_helpers import av_tracks
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role
from vitrine.core.wire.rtc import PROTOCOL_VERSION

BURST = 60
LIMIT = 4
ROOM = "burst-room"
JOIN_S = 120.0  # one viewer's budget, from its request to its first decoded frame, on a loaded machine
SETTLE_S = 30.0


async def until(condition: Callable[[], bool], what: str, limit_s: float = SETTLE_S) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _drop(packet: Any, codec: Any) -> None:
    return None


def gate_of(server: RunningServer) -> HandshakeGate:
    assert server.runtime is not None and server.runtime.media_worker is not None
    return server.runtime.media_worker.handshakes


@contextlib.asynccontextmanager
async def burst_server(**overrides: Any) -> AsyncIterator[tuple[RunningServer, VitrineClient]]:
    """A server whose worker connects ``LIMIT`` joins at once (a handshake's slot never expires by time here, so
    each is given back by its handshake's end), and a host publishing camera and microphone in ``ROOM``."""
    settings: dict[str, Any] = {
        "max_handshakes_per_worker": LIMIT,
        "handshake_timeout_s": 600.0,
        "max_participants_per_room": 500,
        **overrides,
    }
    async with embedded_server(**settings) as server:
        host = VitrineClient(server.url, server.token(ROOM, "host", Role.HOST), tracks=av_tracks())
        try:
            await host.connect(timeout=60)
            await host.wait_connected(60)
            await until(lambda: gate_of(server).in_flight == 0, "the host's handshake to end")
            yield server, host
        finally:
            await host.close()


async def first_frame(track: Any, receiver: Any) -> bool:
    """Decode one video frame, then stop decoding (the viewer stays connected, and leaves the CPU to the rest)."""
    frame = await asyncio.wait_for(track.recv(), JOIN_S)
    taps.tap_receiver(receiver, _drop)
    return isinstance(frame, VideoFrame)


async def all_at_once(
    count: int, prepare: Callable[[int], Awaitable[Any]], join: Callable[[Any], Awaitable[bool]]
) -> list[bool]:
    """Prepare every viewer, then start every join at the same instant; each says whether it decoded video."""
    viewers = await asyncio.gather(*(prepare(i) for i in range(count)))
    go = asyncio.Event()

    failures: dict[str, int] = {}

    async def one(viewer: Any) -> bool:
        await go.wait()
        try:
            return await join(viewer)
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"[:120]
            failures[what] = failures.get(what, 0) + 1
            return False

    tasks = [asyncio.create_task(one(v)) for v in viewers]
    await asyncio.sleep(0)
    go.set()
    decoded = await asyncio.gather(*tasks)
    assert not failures, f"{sum(decoded)} of {count} decoded video; the others failed: {failures}"
    return decoded


async def test_a_burst_of_whep_viewers_all_join_and_decode_video() -> None:
    async with burst_server() as (server, _host):
        limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
        async with httpx.AsyncClient(base_url=server.url, timeout=JOIN_S, limits=limits) as http:
            sessions: list[WhipSession] = []

            async def prepare(i: int) -> WhipSession:
                session = WhipSession(http, "whep", ROOM, server.token(ROOM, f"whep-{i}", Role.VIEWER, create=False))
                sessions.append(session)
                await session.offer()
                return session

            async def join(session: WhipSession) -> bool:
                await session.post()
                await session.wait_connected(JOIN_S)
                receiver = session.received("video")
                return receiver is not None and await first_frame(receiver.track, receiver)

            try:
                decoded = await all_at_once(BURST, prepare, join)
                gate = gate_of(server)
                assert sum(decoded) == BURST, f"{sum(decoded)} of {BURST} WHEP viewers decoded video"
                assert sum(s.pc.connectionState == "connected" for s in sessions) == BURST
                assert 1 <= gate.peak <= LIMIT  # never more handshakes at once than the bound
                assert gate.refused == 0 and gate.expired == 0  # every slot came back at its handshake's end
                await until(lambda: gate.in_flight == 0 and gate.waiting == 0, "every slot to be given back")
            finally:
                await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def test_a_burst_of_websocket_viewers_all_join_and_decode_video() -> None:
    async with burst_server() as (server, _host):
        clients: list[VitrineClient] = []

        async def prepare(i: int) -> VitrineClient:
            client = VitrineClient(server.url, server.token(ROOM, f"ws-{i}", Role.VIEWER, create=False))
            clients.append(client)
            return client

        async def join(client: VitrineClient) -> bool:
            await client.connect(timeout=JOIN_S)
            video = await client.next_remote_track("video", timeout=JOIN_S)
            receiver = next(t.receiver for t in client.pc.getTransceivers() if t.receiver.track is video.track)
            return await first_frame(video.track, receiver)

        try:
            decoded = await all_at_once(BURST, prepare, join)
            gate = gate_of(server)
            assert sum(decoded) == BURST, f"{sum(decoded)} of {BURST} WebSocket viewers decoded video"
            assert all(c.joined is not None for c in clients)
            told = [c for c in clients if c.queued]
            assert len(told) == gate.queued  # every join that waited its turn was told so, and joined all the same
            assert all(1 <= c.queued[0] <= BURST for c in told)
            assert all(c.queued == sorted(c.queued, reverse=True) for c in told)  # a place in line only moves up
            assert 1 <= gate.peak <= LIMIT and gate.refused == 0 and gate.expired == 0
            await until(lambda: gate.in_flight == 0 and gate.waiting == 0, "every slot to be given back")
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_a_queued_join_is_told_then_joins_and_a_full_line_is_refused_with_retry_after() -> None:
    """One handshake at a time, and two joins in line at most. A viewer that never answers its offer holds the
    slot: a WebSocket join behind it gets ``queued`` (position 1) and waits, a WHEP request behind that is held,
    and one more is refused (``503 worker_busy``, ``Retry-After``). Once the blocker leaves, both get in, in
    order, and decode video."""
    async with burst_server(max_handshakes_per_worker=1, join_queue_max=2) as (server, _host):
        gate = gate_of(server)
        blocker = await websockets.connect(server.ws_url)
        queued = VitrineClient(server.url, server.token(ROOM, "queued", Role.VIEWER, create=False))
        async with httpx.AsyncClient(base_url=server.url, timeout=JOIN_S) as http:
            player = WhipSession(http, "whep", ROOM, server.token(ROOM, "player", Role.VIEWER, create=False))
            refused = WhipSession(http, "whep", ROOM, server.token(ROOM, "refused", Role.VIEWER, create=False))
            try:
                token = server.token(ROOM, "blocker", Role.VIEWER, create=False)
                await blocker.send(json.dumps({"type": "join", "v": PROTOCOL_VERSION, "token": token}))
                seen = [json.loads(await asyncio.wait_for(blocker.recv(), SETTLE_S)) for _ in range(2)]
                assert [m["type"] for m in seen] == ["joined", "offer"]  # and it never answers
                assert gate.in_flight == 1

                joining = asyncio.create_task(queued.connect(timeout=JOIN_S))
                await until(lambda: queued.queued[:1] == [1] and gate.waiting == 1, "the WebSocket join to be queued")
                assert queued.joined is None and not joining.done()

                await player.offer()
                posting = asyncio.create_task(player.post())
                await until(lambda: gate.waiting == 2, "the WHEP request to wait in line")
                assert not posting.done()  # held, not answered

                await refused.offer()
                with pytest.raises(WhipError) as busy:
                    await refused.post()
                assert busy.value.code == "worker_busy"
                answer = await http.post(
                    f"/whep/{ROOM}",
                    content=refused.pc.localDescription.sdp,
                    headers={
                        "Authorization": f"Bearer {server.token(ROOM, 'refused-2', Role.VIEWER, create=False)}",
                        "Content-Type": "application/sdp",
                    },
                )
                assert answer.status_code == 503 and answer.json()["code"] == "worker_busy"
                assert int(answer.headers["retry-after"]) >= 1
                assert gate.refused == 2 and gate.in_flight == 1 and gate.waiting == 2

                await blocker.close()  # its leave closes its peer: the slot goes to the head of the line
                joined = await asyncio.wait_for(joining, JOIN_S)
                assert joined["participant"]["identity"] == "queued"
                video = await queued.next_remote_track("video", timeout=JOIN_S)
                receiver = next(t.receiver for t in queued.pc.getTransceivers() if t.receiver.track is video.track)
                assert await first_frame(video.track, receiver)

                await asyncio.wait_for(posting, JOIN_S)  # the WHEP request's turn came after the queued join's
                await player.wait_connected(JOIN_S)
                whep_video = player.received("video")
                assert whep_video is not None and await first_frame(whep_video.track, whep_video)
                assert set(queued.queued) == {1} and gate.queued == 2 and gate.expired == 0
                await until(lambda: gate.in_flight == 0 and gate.waiting == 0, "every slot to be given back")
            finally:
                await blocker.close()
                await queued.close()
                await asyncio.gather(player.close(), refused.close(), return_exceptions=True)


async def test_over_redis_a_join_that_waits_longer_than_the_rpc_timeout_still_joins(redis_db_url: str) -> None:
    """Scaled, the join's reply comes over Redis, awaited for ``worker_rpc_timeout_s``: each ``queued`` notice
    moves that deadline on, so a join kept in line for many times the timeout is not given up as unanswered."""
    rpc_timeout_s = 1.0
    async with burst_server(
        max_handshakes_per_worker=1, redis_url=redis_db_url, worker_rpc_timeout_s=rpc_timeout_s
    ) as (server, _host):
        gate = gate_of(server)
        gate.notice_s = rpc_timeout_s / 5  # told again often, so the wait below outlasts the timeout many times
        blocker = await websockets.connect(server.ws_url)
        queued = VitrineClient(server.url, server.token(ROOM, "queued", Role.VIEWER, create=False))
        try:
            token = server.token(ROOM, "blocker", Role.VIEWER, create=False)
            await blocker.send(json.dumps({"type": "join", "v": PROTOCOL_VERSION, "token": token}))
            assert json.loads(await asyncio.wait_for(blocker.recv(), SETTLE_S))["type"] == "joined"
            await until(lambda: gate.in_flight == 1, "the blocker to hold the slot")
            joining = asyncio.create_task(queued.connect(timeout=JOIN_S))
            await until(lambda: len(queued.queued) >= 15, "the queued join to be told its place 15 times")
            assert not joining.done()  # three RPC timeouts later, still waiting its turn
            await blocker.close()
            joined = await asyncio.wait_for(joining, JOIN_S)
            assert joined["participant"]["identity"] == "queued" and set(queued.queued) == {1}
            video = await queued.next_remote_track("video", timeout=JOIN_S)
            receiver = next(t.receiver for t in queued.pc.getTransceivers() if t.receiver.track is video.track)
            assert await first_frame(video.track, receiver)
        finally:
            await blocker.close()
            await queued.close()
