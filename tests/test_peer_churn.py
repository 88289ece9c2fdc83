"""A churn soak with a bounded count: clients join and leave a room through the real server, and every
finished peer connection (the worker's and the client's, with their DTLS and ICE transports) must be
garbage once they are gone. Anything that keeps a reference to one (a registry keyed by its ICE
connection whose value leads back to the key, a handler on a long-lived object, a task) fails it.
The long soak with memory samples is ``loadtest/bench/churn_memory.py``."""

from __future__ import annotations

import gc
import weakref

from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from loadtest.client import VitrineClient
from tests.servers import RunningServer
from tests.worker_harness import wait_for
from vitrine.core.models import Role

JOINS = 30
ROOM = "churn"


def _watch(pc: RTCPeerConnection) -> list[weakref.ref]:
    """Weak references to a peer connection and to each of its transports."""
    refs = [weakref.ref(pc)]
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        refs += [weakref.ref(dtls), weakref.ref(dtls.transport), weakref.ref(dtls.transport._connection)]
    return refs


async def test_finished_peer_connections_are_collected(server: RunningServer) -> None:
    worker = server.runtime.media_worker
    host = VitrineClient(server.url, server.token(ROOM, "host", Role.CUSTOMER), tracks=[AudioStreamTrack()])
    await host.connect()
    await host.wait_connected()
    watched: list[weakref.ref] = []
    try:
        for n in range(JOINS):
            # Each joiner publishes (its transport takes the SRTP fast path) and receives the host's audio.
            client = VitrineClient(server.url, server.token(ROOM, f"guest-{n}"), tracks=[AudioStreamTrack()])
            sid = (await client.connect())["participant"]["sid"]
            await client.wait_connected()
            await wait_for(
                lambda sid=sid: sid in worker.rooms[ROOM].peers and len(worker.rooms[ROOM].ups) == 2,
                "the guest's publication",
            )
            watched += _watch(worker.rooms[ROOM].peers[sid].pc) + _watch(client.pc)
            await client.close()
            await wait_for(
                lambda sid=sid: sid not in worker.rooms[ROOM].peers and len(worker.rooms[ROOM].ups) == 1,
                "the guest gone from the worker",
            )
            del client
        await wait_for(lambda: _collected(watched) == len(watched), "the finished connections collected", timeout=10)
    finally:
        await host.close()
    assert len(watched) >= JOINS * 2 * 4
    assert _collected(watched) == len(watched)


def _collected(refs: list[weakref.ref]) -> int:
    gc.collect()
    return sum(ref() is None for ref in refs)
