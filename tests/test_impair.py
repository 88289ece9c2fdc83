"""The userspace impairment: configured loss is the loss applied, and a real call survives it."""

from __future__ import annotations

import asyncio
import random

import pytest

from loadtest.client import VitrineClient
from loadtest.impair import DirectionImpairer, GilbertElliott, Impairment, LinkImpairment
from media import taps
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role


@pytest.mark.parametrize(
    ("loss", "burst", "tolerance"), [(0.02, 1, 0.005), (0.1, 1, 0.01), (0.3, 1, 0.015), (0.1, 4, 0.02), (0.3, 3, 0.03)]
)
def test_measured_loss_matches_configured(loss: float, burst: float, tolerance: float) -> None:
    model = GilbertElliott(loss, burst, random.Random(7))
    drops = [model.drop() for _ in range(50_000)]
    assert abs(sum(drops) / len(drops) - loss) < tolerance
    runs, current = [], 0
    for dropped in drops:
        if dropped:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    mean_burst = sum(runs) / len(runs)
    expected = burst if burst > 1 else 1 / (1 - loss)  # independent losses still cluster a little
    assert abs(mean_burst - expected) / expected < 0.15


def test_same_seed_same_drops() -> None:
    a = GilbertElliott(0.2, 2, random.Random("s"))
    b = GilbertElliott(0.2, 2, random.Random("s"))
    assert [a.drop() for _ in range(1000)] == [b.drop() for _ in range(1000)]


async def test_delay_defers_and_rate_cap_drops_the_excess() -> None:
    delivered = asyncio.Event()
    delayed = DirectionImpairer(Impairment(delay_ms=30), random.Random(1))
    delayed.process(100, delivered.set)
    assert not delivered.is_set() and delayed.counters.delayed == 1
    await asyncio.wait_for(delivered.wait(), 10)

    capped = DirectionImpairer(Impairment(rate_kbps=100, queue_ms=300), random.Random(1))
    for _ in range(1000):  # 1000 x 1200 B at once into 100 kbit/s: ~3 fit in a 300 ms queue
        capped.process(1200, lambda: None)
    assert capped.counters.queue_drops > 900
    assert capped.counters.packets == 1000


def test_invalid_impairments_are_refused() -> None:
    for bad in ({"loss": 1.0}, {"loss": -0.1}, {"burst": 0.5}, {"delay_ms": -1}):
        with pytest.raises(ValueError):
            Impairment(**bad)


async def test_a_call_survives_ten_percent_loss_both_ways(server: RunningServer) -> None:
    link = LinkImpairment(down=Impairment(loss=0.1), up=Impairment(loss=0.1), seed=3)
    host = VitrineClient(server.url, server.token("lossy", "host", Role.HOST), tracks=av_tracks())
    viewer = VitrineClient(server.url, server.token("lossy", "viewer", Role.VIEWER), datagram_hook=link)
    try:
        await host.connect()
        await viewer.connect()
        video = (await remote_tracks(viewer, 2, timeout=60))["video"]
        assert len(await receive_frames(video, 60, timeout=90)) == 60
        down = link.counters["down"]
        assert down.packets > 200
        assert abs(down.loss - 0.1) < 0.06
    finally:
        await viewer.close()
        await host.close()


async def test_handshakes_complete_under_heavy_loss(server: RunningServer) -> None:
    host = VitrineClient(server.url, server.token("harsh", "host", Role.HOST), tracks=av_tracks())
    await host.connect()
    before = taps.HandshakeAccelerator.dtls_flights_resent
    viewers = [
        VitrineClient(
            server.url,
            server.token("harsh", f"v{i}", Role.VIEWER),
            datagram_hook=LinkImpairment(down=Impairment(loss=0.3), up=Impairment(loss=0.3), seed=i),
        )
        for i in range(6)
    ]
    try:
        for viewer in viewers:
            await viewer.connect()
            await viewer.wait_connected(timeout=60)
        assert taps.HandshakeAccelerator.dtls_flights_resent > before
    finally:
        for viewer in viewers:
            await viewer.close()
        await host.close()
