"""Which addresses and ports aioice gathers host candidates on, and what that means for encoders on this host.

Media offered on loopback only (``vitrine serve`` on 127.0.0.1 leaves ``VITRINE_RTC_INTERFACES`` at 127.0.0.1)
cannot be reached by an encoder built on libnice, on this host or any other. libnice never gathers a loopback
candidate, and it pins each of its sockets to its own interface (``IP_UNICAST_IF``), so its checks from, say,
eth0's address to our 127.0.0.1 leave by eth0 and are dropped: ICE fails after the HTTP steps all succeeded.
That is every GStreamer ``webrtcbin`` client (Meetecho's simple-whip-client, ``whipsink``). Only the operator can
choose to offer media on another address, so ``loopback_only_warning`` says what to set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from typing import Any

import aioice.ice
import aioice.turn

_original_get_component_candidates = aioice.ice.Connection.get_component_candidates
# A media socket's receive buffer holds what arrives while the process's event loop is busy (a burst of joins on a
# loaded machine). aioice asks for 256 KiB, about a second of one client's audio and video: a worker that stalls
# longer drops datagrams, keyframe packets among them, and its subscribers wait for video (issue 17). The kernel
# caps what a socket may ask at net.core.rmem_max (docs/deployment.md); the memory is used only while backlogged.
MEDIA_RCVBUF_BYTES = 4 << 20
_aioice_host_addresses = aioice.ice.get_host_addresses  # every non-loopback address, before any patch


def configure_host_candidates(interfaces: list[str], port_min: int = 0, port_max: int = 0) -> None:
    """Gather host candidates only on ``interfaces`` and, if given, inside a UDP port range.

    With no interfaces, aioice's default applies (every non-loopback address). Every media socket gathered from
    now on asks for a receive buffer of ``MEDIA_RCVBUF_BYTES``.
    """
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = MEDIA_RCVBUF_BYTES  # read by aioice's gathering, and by _bind_in_range
    if interfaces:
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(interfaces)
    if not port_min:  # undo our patch (a method replaced on purpose, hence the ignore)
        aioice.ice.Connection.get_component_candidates = _original_get_component_candidates  # type: ignore[method-assign]
        return

    async def get_component_candidates(
        self: aioice.ice.Connection, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Any]:
        candidates = []
        for address in addresses:
            protocol = await _bind_in_range(self, address, port_min, port_max)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            self._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        # Server-reflexive and relayed candidates: aioice's own logic, no host sockets.
        return candidates + await _original_get_component_candidates(self, component, [], timeout)

    # The patch: a method replaced on purpose, hence the ignore.
    aioice.ice.Connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


def host_addresses() -> list[str]:
    """This host's own addresses that are not loopback (aioice's unpatched gathering): IPv4 first."""
    addresses = _aioice_host_addresses(use_ipv4=True, use_ipv6=True)
    return sorted(addresses, key=lambda address: ipaddress.ip_address(address).version)


def loopback_only_warning(interfaces: list[str]) -> str | None:
    """What an operator must set for same-host encoders, when media is offered on loopback only; else None."""
    if not interfaces or not all(ipaddress.ip_address(address).is_loopback for address in interfaces):
        return None
    choices = ", ".join(host_addresses()) or "none found: add one, e.g. a veth pair's"
    return (
        f"media is offered on {', '.join(interfaces)} only: WHIP encoders built on libnice (GStreamer webrtcbin, "
        "simple-whip-client) never use a loopback address, so their ICE fails even on this host. To let them "
        f"publish, set VITRINE_RTC_INTERFACES to an address of this host ({choices}); media then listens there too"
    )


class PortRangeExhausted(OSError):
    """Every UDP port of the configured media range is in use."""


async def _bind_in_range(connection: aioice.ice.Connection, address: str, port_min: int, port_max: int) -> Any:
    loop = asyncio.get_running_loop()
    ports = list(range(port_min, port_max + 1))
    random.shuffle(ports)
    for port in ports:
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port)
            )
        except OSError:
            continue
        sock = protocol.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        return protocol
    raise PortRangeExhausted(f"no free UDP port in {port_min}-{port_max} on {address}")
