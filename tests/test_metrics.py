"""/metrics of every process: monotonic media counters labelled by node, the load as gauges, process metrics, and
a scaled media worker's own listener."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from media.metrics import ForwardingTotals, MetricsServer, media_stats_from_metrics, serve_worker_metrics
from tests.metrics_helpers import WORKER_NODE, exposed_names, samples, scaled_cluster, scrape, value
from tests.scaled_helpers import consult_with_media
from tests.servers import RunningServer, free_port

PROCESS_METRICS = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    "python_info",
    "python_gc_collections_total",
)


async def until(condition, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001 - an async predicate
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def assert_every_sample_on(text: str, node: str) -> None:
    nodes = {dict(labels).get("node") for (_, labels) in samples(text)}
    assert nodes == {node}, nodes


async def test_embedded_media_counters_never_fall_when_rooms_close(server: RunningServer) -> None:
    url = server.url + "/metrics"
    node = server.settings.node_id
    customer, agent = await consult_with_media(server, "metrics-monotonic")
    try:
        during = await scrape(url)
        assert value(during, "vitrine_media_participants", node=node) == 2
        assert value(during, "vitrine_media_rooms", node=node) == 1
        assert value(during, "vitrine_media_published_tracks", node=node) == 4
        assert value(during, "vitrine_media_forwarded_packets_total", node=node) > 0
        assert value(during, "vitrine_media_forwarded_bytes_total", node=node) > 0
        assert value(during, "vitrine_media_received_bytes_total", node=node) > value(
            during, "vitrine_media_received_packets_total", node=node
        )
        assert value(during, "vitrine_joins_total", node=node) >= 2
    finally:
        await customer.close()
        await agent.close()

    async def nobody_left() -> bool:
        return value(await scrape(url), "vitrine_media_participants", node=node) == 0

    await until(nobody_left, "the worker to let both participants go")
    gc.collect()  # the tracks' counters retire when their tracks are collected: they must stay counted
    after = await scrape(url)
    for name in (
        "vitrine_media_received_packets_total",
        "vitrine_media_received_bytes_total",
        "vitrine_media_forwarded_packets_total",
        "vitrine_media_forwarded_bytes_total",
        "vitrine_media_publisher_keyframe_requests_total",
    ):
        assert value(after, name, node=node) >= value(during, name, node=node), name
    assert value(after, "vitrine_media_forwarded_packets_total", node=node) > 0
    assert value(after, "vitrine_media_published_tracks", node=node) == 0
    assert_every_sample_on(after, node)
    names = exposed_names(after)
    assert not any(name == "vitrine_media" or "pid" in name for name in names), "no per-pid series"
    assert set(PROCESS_METRICS) <= names
    stats = media_stats_from_metrics(after)  # what load tests read from outside
    assert stats["packets_out"] == value(after, "vitrine_media_forwarded_packets_total", node=node)
    assert stats["participants"] == 0


@dataclass
class _Counters:
    packets: int = 0
    bytes_out: int = 0


class _Track:
    def __init__(self, totals: ForwardingTotals) -> None:
        self.counters = _Counters()
        self.cycle = self  # collected by the cycle collector only, like real tracks
        totals.follow(self, self.counters)


def test_totals_keep_what_collected_tracks_counted() -> None:
    totals = ForwardingTotals()
    tracks = [_Track(totals) for _ in range(3)]
    for n, track in enumerate(tracks, start=1):
        track.counters.packets += n
        track.counters.bytes_out += 100 * n
    assert totals.snapshot() == {"packets": 6, "bytes_out": 600}
    survivor = tracks.pop()
    del tracks
    gc.collect()
    survivor.counters.packets += 1
    assert totals.snapshot() == {"packets": 7, "bytes_out": 600}
    del survivor
    gc.collect()
    assert totals.snapshot() == {"packets": 7, "bytes_out": 600}


async def test_scaled_worker_serves_its_own_metrics(redis_db_url: str, tmp_path: Path) -> None:
    async with scaled_cluster(redis_db_url, tmp_path) as cluster:
        before = await scrape(cluster.worker_metrics_url)
        assert_every_sample_on(before, WORKER_NODE)
        assert set(PROCESS_METRICS) <= exposed_names(before)
        assert value(before, "vitrine_media_rooms", node=WORKER_NODE) == 0
        customer, agent = await consult_with_media(cluster.server, "metrics-scaled")
        try:
            during = await scrape(cluster.worker_metrics_url)
            assert value(during, "vitrine_media_participants", node=WORKER_NODE) == 2
            forwarded = value(during, "vitrine_media_forwarded_packets_total", node=WORKER_NODE)
            assert forwarded > 0
        finally:
            await customer.close()
            await agent.close()

        async def nobody_left() -> bool:
            return value(await scrape(cluster.worker_metrics_url), "vitrine_media_participants") == 0

        await until(nobody_left, "the worker to let both participants go")
        after = await scrape(cluster.worker_metrics_url)
        assert value(after, "vitrine_media_forwarded_packets_total", node=WORKER_NODE) >= forwarded
        signaling = await scrape(cluster.server.url + "/metrics")
        assert "vitrine_media_forwarded_packets_total" not in exposed_names(signaling), "no worker in signaling"
        assert value(signaling, "vitrine_joins_total") == 2
        async with httpx.AsyncClient() as client:
            other = await client.get(cluster.worker_metrics_url.replace("/metrics", "/healthz"))
            posted = await client.post(cluster.worker_metrics_url)
        assert (other.status_code, posted.status_code) == (404, 405)


async def test_worker_metrics_port_taken_or_off(server: RunningServer) -> None:
    worker = server.runtime.media_worker if server.runtime else None
    assert worker is not None
    assert await serve_worker_metrics(worker, "n", "127.0.0.1", 0) is None  # 0: off
    listening = await serve_worker_metrics(worker, "n", "127.0.0.1", free_port())
    assert isinstance(listening, MetricsServer)
    try:
        # A second worker on the same port serves media without metrics rather than failing.
        assert await serve_worker_metrics(worker, "n", "127.0.0.1", listening.port) is None
        text = await scrape(f"http://127.0.0.1:{listening.port}/metrics")
        assert_every_sample_on(text, "n")
    finally:
        await listening.close()
