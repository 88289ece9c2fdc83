"""Webhook targets, checked when a shop's URL is set and again on every connection a delivery opens.

The delivery check lives in the HTTP client's network backend: it resolves the name itself, refuses it when
every address is non-public (``vitrine.core.netpolicy``) and connects to an address it checked, so a name
re-pointed between a check and the connection (DNS rebinding) cannot slip through. TLS still verifies the
URL's host name: only the TCP connection goes to the checked address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.netpolicy import Network, host_refusal, parse_networks, refusal

ALLOW_HINT = "set VITRINE_WEBHOOK_ALLOWED_NETWORKS to allow it"


def check_webhook_url(url: str | None, settings: Settings) -> None:
    """Refuse a URL whose host is a non-public address (or localhost) the operator did not allow."""
    host = urlsplit(url).hostname if url else None
    problem = host_refusal(host, parse_networks(settings.webhook_allowed_networks)) if host else None
    if problem is not None:
        raise VitrineError(ErrorCode.URL_NOT_ALLOWED, f"webhook_url: {problem}; {ALLOW_HINT}")


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allowed: Sequence[Network], inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allowed, self.inner = list(allowed), inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        usable = [address for address in addresses if refusal(address, self.allowed) is None]
        if not usable:
            kinds = sorted({refusal(address, self.allowed) or "" for address in addresses})
            raise httpcore.ConnectError(
                f"{host} resolves only to non-public addresses ({', '.join(kinds)}); {ALLOW_HINT}"
            )
        error: Exception | None = None
        for address in usable:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def webhook_transport(settings: Settings) -> httpx.AsyncHTTPTransport:
    """httpx's transport, connecting through ``PublicOnlyBackend`` (httpx takes no backend: its pool is
    replaced by the same pool with one; ``tests/test_webhook_targets.py`` fails if that stops working)."""
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,  # httpx's default limits
        network_backend=PublicOnlyBackend(parse_networks(settings.webhook_allowed_networks)),
    )
    return transport
