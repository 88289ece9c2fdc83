"""A 1:1 video consult end to end: two aiortc clients, the real WebSocket, the embedded worker."""

from __future__ import annotations

import asyncio

from loadtest.client import VitrineClient
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role


async def test_two_clients_exchange_audio_and_video(server: RunningServer) -> None:
    customer = VitrineClient(server.url, server.token("consult-1", "shopper", Role.CUSTOMER), tracks=av_tracks())
    agent = VitrineClient(server.url, server.token("consult-1", "agent-7", Role.AGENT), tracks=av_tracks())
    try:
        joined = await customer.connect()
        assert joined["room"]["name"] == "consult-1"
        assert joined["grants"]["can_publish"] is True
        await agent.connect()

        customer_remote = await remote_tracks(customer, 2)
        agent_remote = await remote_tracks(agent, 2)
        assert set(customer_remote) == set(agent_remote) == {"audio", "video"}
        for remote in (*customer_remote.values(), *agent_remote.values()):
            frames = await receive_frames(remote, 5)
            assert len(frames) == 5
        video = (await receive_frames(customer_remote["video"], 1))[0]
        assert (video.width, video.height) == (320, 240)

        # Each side sees the other's tracks attributed to the right participant.
        shopper_sid = next(p["sid"] for p in customer.joined["participants"] if p["identity"] == "shopper")
        assert customer_remote["video"].info is not None
        assert customer_remote["video"].info.participant_sid != shopper_sid

        stats = server.runtime.media_worker.media_stats()
        assert stats["subscriptions"] == 4
        assert stats["packets_out"] > 0
        # The forwarding path never decoded nor encoded anything.
        assert stats["decoders_running"] == 0
        assert stats["encoders_created"] == 0
    finally:
        await customer.close()
        await agent.close()


async def test_events_are_numbered_and_ordered(server: RunningServer) -> None:
    first = VitrineClient(server.url, server.token("consult-2", "a"), tracks=av_tracks())
    second = VitrineClient(server.url, server.token("consult-2", "b", Role.AGENT), tracks=av_tracks())
    try:
        await first.connect()
        await second.connect()
        await remote_tracks(first, 2)
        await second.close()
        deadline = asyncio.get_running_loop().time() + 20
        while not any(e["event"] == "participant_left" for e in first.events):
            assert asyncio.get_running_loop().time() < deadline, first.events
            await asyncio.sleep(0.05)
        seqs = [e["seq"] for e in first.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        kinds = [e["event"] for e in first.events]
        assert kinds.count("track_unpublished") == 2
        assert kinds.index("participant_joined") < kinds.index("participant_left")
    finally:
        await first.close()


async def test_leaving_unsubscribes_and_renegotiates(server: RunningServer) -> None:
    host = VitrineClient(server.url, server.token("consult-3", "host", Role.AGENT), tracks=av_tracks())
    guest = VitrineClient(server.url, server.token("consult-3", "guest"), tracks=av_tracks())
    try:
        await host.connect()
        await guest.connect()
        await remote_tracks(guest, 2)
        negotiations = guest.negotiations
        await host.close()
        # The guest's last negotiation of the join may still be finishing when its tracks arrive, so a new
        # negotiation alone does not say the leave's has come: wait for both, a renegotiation and the worker
        # holding the guest alone, with nothing subscribed.
        deadline = asyncio.get_running_loop().time() + 20
        while (
            guest.negotiations == negotiations
            or server.runtime.media_worker.media_stats()["participants"] != 1
            or server.runtime.media_worker.media_stats()["subscriptions"] != 0
        ):
            assert asyncio.get_running_loop().time() < deadline, server.runtime.media_worker.media_stats()
            await asyncio.sleep(0.05)
        stats = server.runtime.media_worker.media_stats()
        assert stats["participants"] == 1
        assert stats["subscriptions"] == 0
    finally:
        await guest.close()
