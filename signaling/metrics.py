"""Prometheus metrics, exposed at ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.joins = Counter("vitrine_joins", "Participants admitted over WebSocket", registry=r)
        self.whip_sessions = Counter("vitrine_whip_sessions", "WHIP and WHEP sessions created",
                                     ["kind"], registry=r)
        self.signaling_messages = Counter("vitrine_signaling_messages", "Client messages handled",
                                          ["type"], registry=r)
        self.signaling_errors = Counter("vitrine_signaling_errors", "Typed errors sent to clients",
                                        ["code"], registry=r)
        self.sessions = Gauge("vitrine_sessions", "Open WebSocket sessions on this node", registry=r)
        self.media = Gauge("vitrine_media", "The in-process media worker's forwarding counters",
                           ["stat"], registry=r)


METRICS = Metrics()
