"""What every process serves at ``/metrics``: its own families plus process metrics, each sample labelled ``node``.

A signaling node serves this on its HTTP port (``signaling.routes.health``), a scaled media worker on its own
port (``media.metrics``); the embedded server's one process serves both kinds. The ``node`` label is the
process's ``VITRINE_NODE_ID``, so series keep their meaning across restarts and scrapes from several hosts, where
a pid would not. Process metrics (CPU, memory, open fds, start time, GC, the Python version) come from
prometheus_client's own collectors, kept on a registry of their own so that every process adds the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
NODE_LABEL = "node"

PROCESS = CollectorRegistry()
ProcessCollector(registry=PROCESS)
PlatformCollector(registry=PROCESS)
GCCollector(registry=PROCESS)


class NodeLabelled(Collector):
    """The families of ``sources``, each sample with ``node`` added (a sample's own ``node`` label wins)."""

    def __init__(self, node: str, sources: Iterable[Collector]) -> None:
        self.node = node
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            for family in source.collect():
                labelled = Metric(family.name, family.documentation, family.type, family.unit)
                labelled.samples = [
                    sample._replace(labels={NODE_LABEL: self.node, **sample.labels}) for sample in family.samples
                ]
                yield labelled


def exposition(node: str, *sources: Collector) -> bytes:
    """The Prometheus text of ``sources`` and the process metrics, labelled with ``node``."""
    return generate_latest(NodeLabelled(node, [*sources, PROCESS]))
