"""A media worker's metrics: monotonic forwarding counters, its current load, and its own ``/metrics`` listener.

The forwarding counters live on each published track and each subscription (``media.forwarder``), and go when
they go: summed over the live ones, a total would fall whenever a call ended, which Prometheus reads as a counter
reset. ``TOTALS`` keeps them process-wide instead: every counters object is followed while its track lives, and
its final values are added to the retired totals when the track is collected (a ``weakref.finalize``, so nothing
needs to remember to report it, and a track closed twice or never is still counted once). A scrape reads retired
plus live, which only ever grows.

``MediaCollector`` turns those totals, the transport-level drops (``media.taps``) and the worker's current rooms,
peers and tracks into Prometheus families. The embedded server serves them on its HTTP ``/metrics``; a scaled
worker (``vitrine media``) has no HTTP server, so ``MetricsServer`` answers ``GET /metrics`` on
``VITRINE_WORKER_METRICS_PORT``, in the worker's event loop (the collector reads the worker's rooms, which only
that loop may touch).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from media import taps
from vitrine.core.metrics import CONTENT_TYPE, exposition

logger = logging.getLogger(__name__)


class Worker(Protocol):
    """What the collector reads of a ``MediaWorker`` (which imports the forwarder, which imports this module)."""

    def media_stats(self) -> dict[str, int]: ...


class ForwardingTotals:
    """Process-wide sums of per-track counters (dataclasses of ints), kept after the tracks are gone.

    Fields are summed by name, so the publisher's and the subscriber's counters must not share a field name."""

    def __init__(self) -> None:
        self._live: dict[int, Any] = {}
        self._retired: Counter[str] = Counter()
        self._retirements = 0  # bumped by every retirement, so a read can tell it raced one

    def follow(self, owner: object, counters: Any) -> None:
        """Count ``counters`` until ``owner`` is collected, then keep its final values."""
        key = id(counters)
        self._live[key] = counters
        weakref.finalize(owner, self._retire, key)

    def _retire(self, key: int) -> None:
        counters = self._live.pop(key)
        for field in dataclasses.fields(counters):
            self._retired[field.name] += getattr(counters, field.name)
        self._retirements += 1

    def snapshot(self) -> Counter[str]:
        """Every field's total so far. A collection may retire a track (run a finalizer) at any allocation: a
        read that raced one is read again, so no track is counted twice or missed."""
        while True:
            seen = self._retirements
            try:
                totals, live = Counter(self._retired), list(self._live.values())
            except RuntimeError:  # changed while being copied
                continue
            if seen == self._retirements:
                break
        for counters in live:
            for field in dataclasses.fields(counters):
                totals[field.name] += getattr(counters, field.name)
        return totals


TOTALS = ForwardingTotals()

# (metric, help, counters field): the forwarding counters, exported as ``vitrine_media_<metric>_total``.
FORWARDING_COUNTERS = (
    ("received_packets", "RTP packets received from publishers", "packets_in"),
    ("received_bytes", "RTP payload bytes received from publishers", "bytes_in"),
    (
        "forwarded_packets",
        "RTP packets sent to subscribers (keyframe replays included, retransmissions not)",
        "packets",
    ),
    ("forwarded_bytes", "RTP payload bytes sent to subscribers", "bytes_out"),
    ("retransmitted_packets", "Packets resent to subscribers that NACKed them", "retransmitted"),
    ("replayed_packets", "Packets of a cached keyframe replayed to a new subscriber", "replayed"),
    ("publisher_nacks", "NACKs sent to publishers for lost packets", "nacks_sent_upstream"),
    ("publisher_keyframe_requests", "Keyframe requests (PLI) sent to publishers", "keyframe_requests"),
    ("subscriber_nacks", "NACK messages received from subscribers", "nacks"),
    ("subscriber_keyframe_requests", "PLI and FIR messages received from subscribers", "plis"),
    ("sink_errors", "Packet sinks (recorders) detached after they failed", "sink_errors"),
)

# (metric, help, ``MediaWorker.media_stats`` key): the worker's current load, as gauges.
LOAD_GAUGES = (
    ("rooms", "Rooms on this worker", "rooms"),
    ("participants", "Peer connections of participants on this worker", "participants"),
    ("waiting_participants", "Knockers connected but not admitted yet", "waiting"),
    ("published_tracks", "Tracks published to this worker", "published_tracks"),
    ("subscriptions", "Subscriptions this worker forwards", "subscriptions"),
    ("recordings", "Recordings being written", "recordings"),
    ("decoders_running", "Media decoders running (a forwarder runs none)", "decoders_running"),
    ("encoders_created", "Media encoders created (a forwarder creates none)", "encoders_created"),
    (
        "handshakes_in_flight",
        "ICE and DTLS handshakes running now (at most VITRINE_MAX_HANDSHAKES_PER_WORKER)",
        "handshakes_in_flight",
    ),
    ("joins_in_line", "Joins waiting for a handshake slot now", "joins_in_line"),
)


# ``MediaWorker.media_stats`` keys of the counters above, and their metrics.
STATS_COUNTERS = {
    "packets_in": "received_packets",
    "packets_out": "forwarded_packets",
    "retransmitted": "retransmitted_packets",
    "keyframe_requests": "publisher_keyframe_requests",
    "nacks_upstream": "publisher_nacks",
    "foreign_datagrams_dropped": "foreign_datagrams",
    "dtls_flights_resent": "dtls_flights_resent",
}


class MediaCollector(Collector):
    """The families of one media worker and of its process's transports."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        totals = TOTALS.snapshot()
        for name, documentation, field in FORWARDING_COUNTERS:
            yield CounterMetricFamily(f"vitrine_media_{name}", documentation, value=totals[field])
        dropped = CounterMetricFamily(
            "vitrine_media_dropped_packets",
            "RTP packets not forwarded, by reason (before_keyframe: a new subscriber waits for a keyframe; "
            "too_long: a forwarded packet longer than SRTP can protect)",
            labels=["reason"],
        )
        dropped.add_metric(["before_keyframe"], totals["dropped_before_keyframe"])
        dropped.add_metric(["too_long"], taps.OversizeRtp.dropped)
        yield dropped
        malformed = CounterMetricFamily(
            "vitrine_media_malformed_packets", "Malformed packets from peers, dropped, by cause", labels=["cause"]
        )
        for cause, count in sorted(taps.MalformedPackets.counts.items()):
            malformed.add_metric([cause], count)
        yield malformed
        yield CounterMetricFamily(
            "vitrine_media_foreign_datagrams",
            "Datagrams from anyone but a peer's ICE partner, dropped before DTLS or SRTP",
            value=taps.DatagramGuard.dropped,
        )
        yield CounterMetricFamily(
            "vitrine_media_dtls_flights_resent",
            "DTLS handshake flights resent early to a peer that repeated its own",
            value=taps.HandshakeAccelerator.dtls_flights_resent,
        )
        stats = self.worker.media_stats()
        yield CounterMetricFamily(
            "vitrine_media_joins_queued", "Joins that waited in line for a handshake slot", value=stats["joins_queued"]
        )
        yield CounterMetricFamily(
            "vitrine_media_joins_busy", "Joins refused with worker_busy: the line was full", value=stats["joins_busy"]
        )
        for name, documentation, key in LOAD_GAUGES:
            yield GaugeMetricFamily(f"vitrine_media_{name}", documentation, value=stats[key])


def media_stats_from_metrics(text: str) -> dict[str, float]:
    """``MediaWorker.media_stats``'s counters and gauges, by its key names, read from a ``/metrics`` scrape (for
    load tests that watch a server from outside)."""
    names = {f"vitrine_media_{name}_total": key for key, name in STATS_COUNTERS.items()}
    names |= {f"vitrine_media_{name}": key for name, _, key in LOAD_GAUGES}
    stats: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = names.get(sample.name)
            if key is not None:
                stats[key] = stats.get(key, 0.0) + sample.value
    return stats


class MetricsServer:
    """A minimal HTTP/1.1 listener: ``GET /metrics`` answers ``render()``, anything else 404 (405 for methods
    other than GET and HEAD). One request per connection; a client has ``REQUEST_TIMEOUT_S`` to send its head.

    Why not a library's server: the collector reads the worker's rooms, which only the worker's event loop may
    touch, so the answer must be rendered in that loop. prometheus_client's ``start_http_server`` renders in a
    thread of its own (a scrape could iterate a dict the loop is changing), and ``uvicorn.Server`` installs its
    own SIGTERM handler (the worker's drain needs that signal) and exits the process when its port is taken
    (a worker must keep serving media without metrics then)."""

    REQUEST_TIMEOUT_S = 5.0
    MAX_HEAD_BYTES = 8192

    def __init__(self, render: Callable[[], bytes]) -> None:
        self.render = render
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=self.MAX_HEAD_BYTES)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body, content_type = "405 Method Not Allowed", b"GET only\n", "text/plain"
            elif path != "/metrics":
                status, body, content_type = "404 Not Found", b"try /metrics\n", "text/plain"
            else:
                status, body, content_type = "200 OK", self.render(), CONTENT_TYPE
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sent no complete head, or left: nothing to answer
        except Exception:
            logger.exception("answering a /metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def serve_worker_metrics(worker: Worker, node: str, host: str, port: int) -> MetricsServer | None:
    """Serve the worker's and its process's metrics on ``host:port``; None when ``port`` is 0, or taken (the
    worker serves media without them: that matters more, and the error says what to change)."""
    if port == 0:
        return None
    collector = MediaCollector(worker)
    server = MetricsServer(lambda: exposition(node, collector))
    try:
        await server.start(host, port)
    except OSError as exc:
        logger.error(
            "not serving /metrics: cannot listen on %s:%d (%s); give each worker on a host its own "
            "VITRINE_WORKER_METRICS_PORT, or 0 to turn metrics off",
            host,
            port,
            exc.strerror or exc,
        )
        return None
    logger.info("serving /metrics on %s:%d", host, server.port)
    return server
