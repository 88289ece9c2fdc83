"""How uvicorn serves the app: the one place its options are set, for ``vitrine serve`` and the tests alike.

uvicorn bounds neither how long a client may take to send a request's headers (its keep-alive timeout only
runs between requests) nor how many connections one address may hold, so a few thousand half-sent requests
from one host pin as many connections. Its HTTP protocol is therefore subclassed: each request's headers must
arrive within ``http_read_timeout_s`` of the connection (or of the request's first byte, on a kept-alive
connection), else a 408 and the connection is closed; and a client address over
``max_connections_per_client`` open connections (WebSockets included) gets a 503 and is closed at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import Counter
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from signaling.metrics import METRICS
from vitrine.core.config import Settings
from vitrine.core.ratelog import RateLimitedLog

WS_MAX_FRAME_BYTES = 1024 * 1024  # hard transport cap; the protocol's own limit is lower and typed
_log = RateLimitedLog(logging.getLogger(__name__))

_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_503 = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class ClientConnections:
    """Open connections per client address, for one server. A connection counts from its first byte until
    its transport closes, across an upgrade to WebSocket (both protocols release it; releasing is idempotent)."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._owner: dict[asyncio.BaseTransport, str] = {}
        self._count: Counter[str] = Counter()

    def admit(self, transport: asyncio.BaseTransport, address: str | None) -> bool:
        if address is None or self.per_client == 0:
            return True
        if self._count[address] >= self.per_client:
            return False
        self._owner[transport] = address
        self._count[address] += 1
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        address = self._owner.pop(transport, None)
        if address is not None:
            self._count[address] -= 1
            if not self._count[address]:
                del self._count[address]

    def open(self, address: str) -> int:
        return self._count[address]


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a per-address connection cap.

    ``limits`` and ``header_timeout_s`` are set on a subclass made for each server (``uvicorn_options``)."""

    limits: ClientConnections
    header_timeout_s: float
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.limits.admit(transport, self.client[0] if self.client else None):
            METRICS.http_refused.labels(reason="too_many_connections").inc()
            _log.warning(
                "too_many_connections",
                "refused a connection from an address holding %d already",
                self.limits.per_client,
            )
            transport.write(_BUSY_503)
            transport.close()
            return
        self._start_header_timer()

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            METRICS.http_refused.labels(reason="header_timeout").inc()
            self.transport.write(_TIMEOUT_408)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()  # a kept-alive connection's next request; the first one's timer runs already

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self.limits.release(self.transport)
        super().connection_lost(exc)


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """Releases the connection's place when an upgraded connection closes (its HTTP protocol never hears of it)."""

    limits: ClientConnections

    def connection_lost(self, exc: Exception | None) -> None:
        self.limits.release(self.transport)
        super().connection_lost(exc)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with signed URLs and tokens redacted from request lines and its error log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "vitrine.core.redaction.RedactSecrets"}}
    for name in ("uvicorn.access", "uvicorn.error"):
        config["loggers"][name]["filters"] = ["redact"]
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``, besides the app and its address."""
    limits = ClientConnections(settings.max_connections_per_client)
    http = type(
        "ServerHttpProtocol",
        (GuardedHttpProtocol,),
        {"limits": limits, "header_timeout_s": settings.http_read_timeout_s},
    )
    ws = type("ServerWebSocketProtocol", (GuardedWebSocketProtocol,), {"limits": limits})
    return {
        "http": http,
        "ws": ws,
        "ws_max_size": WS_MAX_FRAME_BYTES,
        "log_config": log_config(),
        "limit_concurrency": settings.max_connections or None,
    }
