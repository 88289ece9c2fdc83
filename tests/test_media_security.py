"""Datagrams from anyone but the ICE-selected peer never reach DTLS: a forged ClientHello cannot end a call."""

from __future__ import annotations

import os
import socket

from loadtest.client import VitrineClient
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role

# A DTLS 1.2 record header announcing a ClientHello, then junk.
FORGED_CLIENT_HELLO = bytes([22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 1]) + os.urandom(60)
FORGED_RTP = bytes([0x80, 96]) + os.urandom(100)


def _server_media_addresses(client: VitrineClient) -> set[tuple[str, int]]:
    addresses = set()
    for line in client.pc.remoteDescription.sdp.splitlines():
        if line.startswith("a=candidate:"):
            bits = line.split()
            addresses.add((bits[4], int(bits[5])))
    return addresses


async def test_forged_datagrams_from_another_address_are_dropped(server: RunningServer) -> None:
    publisher = VitrineClient(server.url, server.token("guarded", "seller", Role.AGENT), tracks=av_tracks())
    buyer = VitrineClient(server.url, server.token("guarded", "buyer"), tracks=av_tracks())
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await publisher.connect()
        await buyer.connect()
        video = (await remote_tracks(buyer, 2))["video"]
        assert len(await receive_frames(video, 5)) == 5
        before = server.runtime.media_worker.media_stats()["foreign_datagrams_dropped"]

        targets = _server_media_addresses(buyer) | _server_media_addresses(publisher)
        assert targets
        for address in targets:
            for _ in range(20):
                attacker.sendto(FORGED_CLIENT_HELLO, address)
                attacker.sendto(FORGED_RTP, address)

        # The call goes on, and the worker counted what it refused.
        assert len(await receive_frames(video, 30)) == 30
        assert buyer.pc.connectionState == "connected" and publisher.pc.connectionState == "connected"
        assert server.runtime.media_worker.media_stats()["foreign_datagrams_dropped"] >= before + 40
    finally:
        attacker.close()
        await buyer.close()
        await publisher.close()
