"""What the observability tests share (tests/test_metrics.py, tests/test_logs.py, tests/test_grafana_dashboard.py):
a scaled deployment as separate processes, and reading a Prometheus scrape."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.scaled_helpers import scaled_env
from tests.servers import ProcessGroup, RunningServer, free_port, make_settings, wait_healthy

SIGNALING_NODE = "sig-obs-1"
WORKER_NODE = "wrk-obs-1"


@dataclass
class Cluster:
    server: RunningServer  # the signaling node: its URL, and tokens signed with its secret
    worker_metrics_url: str
    signaling: ProcessGroup
    worker: ProcessGroup

    def output(self) -> str:
        return self.signaling.output() + "\n" + self.worker.output()


@contextlib.asynccontextmanager
async def scaled_cluster(redis_url: str, tmp_path: Path, **env: str) -> AsyncIterator[Cluster]:
    """``vitrine signaling`` (node ``SIGNALING_NODE``) and one ``vitrine media`` (node ``WORKER_NODE``, metrics on
    its own port) on Redis, healthy and scrapeable. ``env`` adds VITRINE_* variables to both."""
    port, metrics_port = free_port(), free_port()
    common = scaled_env(redis_url, tmp_path, **({"VITRINE_LOG_LEVEL": "info"} | env))  # the log tests read info lines
    signaling = ProcessGroup({**common, "VITRINE_NODE_ID": SIGNALING_NODE})
    worker = ProcessGroup({**common, "VITRINE_NODE_ID": WORKER_NODE, "VITRINE_WORKER_METRICS_PORT": str(metrics_port)})
    with signaling.running(), worker.running():
        signaling.start("signaling", "--port", str(port))
        worker.start("media")
        url = f"http://127.0.0.1:{port}"
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        await wait_healthy(url, worker)  # 200 once the worker registered; fails at once if either process exits
        await wait_healthy(url, signaling)
        await until_scrapeable(metrics_url, worker)
        yield Cluster(RunningServer(settings=make_settings(port=port), url=url), metrics_url, signaling, worker)


async def until_scrapeable(url: str, group: ProcessGroup, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{url} never answered:\n{group.output()}"
            await asyncio.sleep(0.1)


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers
    return response.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The one sample ``name`` with ``labels`` (the node label included when given)."""
    found = [
        v
        for (sample, sample_labels), v in samples(text).items()
        if sample == name and all(dict(sample_labels).get(k) == want for k, want in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def exposed_names(text: str) -> set[str]:
    """Every name a query could use: sample names, and each family's name with the suffixes of its type."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names
