"""What every process serves at ``/metrics``: its own families plus process metrics, each sample labelled ``node``.

A signaling node serves this on its HTTP port (``signaling.routes.health``), a scaled media worker on its own
port (``media.metrics``); ``vitrine serve`` serves both kinds: its own worker's, or those of its worker processes,
which it asks for over the bridge (``Scraped``). The ``node`` label is the
process's ``VITRINE_NODE_ID``, so series keep their meaning across restarts and scrapes from several hosts, where
a pid would not. Process metrics (CPU, memory, open fds, start time, GC, the Python version) come from
prometheus_client's own collectors, kept on a registry of their own so that every process adds the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
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


class Scraped(Collector):
    """Families read back from other processes' Prometheus text (``vitrine serve``'s worker processes)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = list(texts)

    def collect(self) -> Iterator[Metric]:
        for text in self.texts:
            yield from text_string_to_metric_families(text)


class OneFamilyPerName(Collector):
    """``source``'s families with those of the same name merged: the exposition format allows each name once, and
    a server's own families and its worker processes' share names (each sample keeps its ``node``)."""

    def __init__(self, source: Collector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for family in self.source.collect():
            if (first := merged.get(family.name)) is None:
                merged[family.name] = first = Metric(family.name, family.documentation, family.type, family.unit)
            first.samples.extend(family.samples)
        yield from merged.values()


def exposition(node: str, *sources: Collector) -> bytes:
    """The Prometheus text of ``sources`` and the process metrics, labelled with ``node``."""
    return generate_latest(OneFamilyPerName(NodeLabelled(node, [*sources, PROCESS])))
