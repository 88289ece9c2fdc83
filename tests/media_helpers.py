"""Helpers for tests that move real media through real aiortc peers."""

from __future__ import annotations

import asyncio

import numpy as np
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

from loadtest.client import RemoteTrack, VitrineClient


class MovingPatternTrack(VideoStreamTrack):
    """A small moving test pattern: cheap to encode, and every frame differs."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        x = (self.count * 4) % self.width
        image[:, x : x + 16] = (255, 255, 255)
        self.count += 1
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


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
