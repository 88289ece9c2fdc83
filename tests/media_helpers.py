"""Helpers for tests that move real media through real aiortc peers (the moving test pattern is the load
harness's: loadtest/source.py)."""

from __future__ import annotations

import asyncio

from aiortc.mediastreams import AudioStreamTrack

from loadtest.client import RemoteTrack, VitrineClient
from loadtest.source import MovingPatternTrack

__all__ = ["MovingPatternTrack", "av_tracks", "receive_frames", "remote_tracks"]


def av_tracks() -> list:
    return [MovingPatternTrack(), AudioStreamTrack()]


async def receive_frames(remote: RemoteTrack, count: int, timeout: float = 30.0) -> list:
    """Decode ``count`` frames from a remote track, or fail after ``timeout`` seconds."""

    async def collect() -> list:
        return [await remote.track.recv() for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


async def remote_tracks(client: VitrineClient, count: int, timeout: float = 30.0) -> dict[str, RemoteTrack]:
    """Wait for ``count`` remote tracks and return them by kind."""
    tracks: dict[str, RemoteTrack] = {}
    for _ in range(count):
        remote = await client.next_remote_track(timeout=timeout)
        tracks[remote.track.kind] = remote
    return tracks
