"""Signaling's Prometheus metrics, and the ``/metrics`` text of a process that serves HTTP.

Counters are exported with ``_total``; every sample gets the process's ``node`` label at exposition
(``vitrine.core.metrics``), not here: tests and code read these unlabelled from ``METRICS.registry``. Names,
labels and units are listed in docs/operations.md, and deploy/grafana/vitrine.json queries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from media.metrics import MediaCollector
from vitrine.core.metrics import Scraped, exposition

if TYPE_CHECKING:
    from media.worker import MediaWorker


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.joins = Counter("vitrine_joins", "Participants admitted over WebSocket", registry=r)
        self.whip_sessions = Counter("vitrine_whip_sessions", "WHIP and WHEP sessions created", ["kind"], registry=r)
        self.signaling_messages = Counter("vitrine_signaling_messages", "Client messages handled", ["type"], registry=r)
        self.signaling_errors = Counter(
            "vitrine_signaling_errors", "Typed errors sent to clients", ["code"], registry=r
        )
        self.sessions = Gauge("vitrine_sessions", "Open WebSocket sessions on this node", registry=r)
        self.http_refused = Counter(
            "vitrine_http_refused",
            "HTTP connections and requests refused before the app, by reason",
            ["reason"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "vitrine_webhook_deliveries",
            "Webhook attempts by outcome: delivered, retried, failed (dead-lettered)",
            ["result"],
            registry=r,
        )

        self.consult_calls = Counter(
            "vitrine_consult_calls", "Consult tickets closed, by outcome", ["outcome"], registry=r
        )
        self.consult_wait = Histogram(
            "vitrine_consult_wait_seconds",
            "Queue wait of answered consults",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.consult_first_frame = Histogram(
            "vitrine_consult_first_frame_seconds",
            "Widget-reported time from the agent's accept reaching the shopper to the first remote video frame",
            buckets=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5),
            registry=r,
        )
        self.evidence_quarantined = Counter(
            "vitrine_evidence_quarantined",
            "Evidence folders with no case record, moved to quarantine (never deleted)",
            registry=r,
        )
        self.recordings_quarantined = Counter(
            "vitrine_recordings_quarantined",
            "Recordings whose show or case record is gone, moved to quarantine",
            registry=r,
        )
        self.desk_sockets = Gauge(
            "vitrine_desk_sockets", "Open consult desk sockets on this node", ["side"], registry=r
        )


METRICS = Metrics()


def render(node: str, worker: MediaWorker | None, worker_processes: list[str]) -> bytes:
    """This process's ``/metrics``: signaling's families, the process's, and its media workers': the one in this
    process, or those of its worker processes (their Prometheus text, each labelled with its own node)."""
    sources: list[Collector] = [METRICS.registry, Scraped(worker_processes)]
    if worker is not None:
        sources.append(MediaCollector(worker))
    return exposition(node, *sources)
