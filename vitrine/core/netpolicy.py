"""Which addresses the server may send webhooks to: public ones, and what the operator allows explicitly.

A webhook target is a URL someone other than the operator may soon type (a shop-facing admin UI), and the
server POSTs to it from inside the operator's network: pointed at loopback, a private range or the cloud
metadata service (169.254.169.254), it would reach what the internet cannot. So targets in the ranges below
are refused, both when a URL is set (its host, if it is an address or ``localhost``) and at every delivery
(every address its name resolves to, then: a public name can be re-pointed at 127.0.0.1 at any time), unless
the address is inside one of ``VITRINE_WEBHOOK_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NON_PUBLIC: dict[str, tuple[str, ...]] = {
    "unspecified": ("0.0.0.0/8", "::/128"),
    "loopback": ("127.0.0.0/8", "::1/128"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    "link-local": ("169.254.0.0/16", "fe80::/10"),  # 169.254.169.254: cloud metadata services
    "shared (CGNAT)": ("100.64.0.0/10",),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
    "reserved": ("240.0.0.0/4",),  # with 255.255.255.255, broadcast
}
_RANGES = [(kind, ipaddress.ip_network(cidr)) for kind, cidrs in NON_PUBLIC.items() for cidr in cidrs]
_LOCALHOST_ADDRESSES = ("127.0.0.1", "::1")


def parse_networks(values: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """Why ``address`` is not a webhook target (its kind of range), or None when it may be one."""
    ip: Address = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed):
        return None
    return next((kind for kind, network in _RANGES if ip in network), None)


def literal_addresses(host: str) -> list[str]:
    """The addresses a host stands for without asking DNS: an IP in any form the resolver accepts
    (``127.1``, ``2130706433``, ``0x7f.0.0.1``), or localhost's; empty for a name."""
    if host == "localhost" or host.endswith(".localhost"):
        return list(_LOCALHOST_ADDRESSES)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return []
    return [str(info[4][0]) for info in infos]


def host_refusal(host: str, allowed: Sequence[Network]) -> str | None:
    """Why a URL's host can never be a webhook target (judged without DNS), or None."""
    for address in literal_addresses(host):
        kind = refusal(address, allowed)
        if kind is not None:
            return f"{host} is a {kind} address"
    return None
