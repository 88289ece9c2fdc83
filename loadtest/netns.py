"""Kernel packet loss (``--impair-mode kernel``): the clients run in a network namespace whose link drops UDP.

Why: the userspace impairment (``loadtest.impair``) drops datagrams inside the
client's own process. This one drops them in the kernel, on a real link, so
the clients' sockets, aioice and aiortc see exactly what a lossy network gives.
``tc netem`` is missing from this machine's kernel; nftables' ``numgen random``
is there, so the loss is random (independent per packet) and nothing else:
no bursts, delay, jitter or rate cap.

One run::

    root namespace                          namespace vitrine-lt-<pid>-<slot>
    vitrine serve on 10.231.S.1 ---veth---  10.231.S.2: the harness's worker processes
                                             table netdev vitrine_loadtest on the veth end:
                                               ingress = down (server -> client)
                                               egress  = up   (client -> server)

Each chain counts the UDP on the veth (a named counter) and drops
``numgen random mod 10000 < N`` of it (another named counter). The netdev
hooks are the link itself: a drop there is silent, where one in the ``output``
hook would fail the sender's ``sendto`` with EPERM. Only UDP (ICE,
DTLS, SRTP) is touched: the signaling WebSocket and the HTTP calls are TCP and
stay lossless, so join times measure media setup under loss, not TCP
retransmission timers. Loss is set in steps of 0.01 %.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.config import ConfigError, ImpairmentConfig

NAME_PREFIX = "vitrine-lt-"
NETNS_DIR = Path("/run/netns")  # where `ip netns add` mounts the namespaces (/var/run is a link to /run)
SUBNET = ipaddress.ip_network("10.231.0.0/16")  # carved into /30 slots, one per run
SLOTS = SUBNET.num_addresses // 4
LOCK_PATH = "/run/vitrine-loadtest-netns.lock"  # two runs never pick the same slot
TABLE = "vitrine_loadtest"
SCALE = 10_000  # numgen modulus: loss resolution 0.01 %
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT_S = 30.0
DIRECTIONS = ("down", "up")


class NetnsError(RuntimeError):
    """A command that sets up, reads or removes the namespace failed; the message quotes it and its error."""


def preflight() -> None:
    """Refuse early, with what to do, when this machine cannot run kernel impairment."""
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "--impair-mode kernel needs root (it creates a network namespace, a veth pair and an "
            "nftables table); run as root, or use --impair-mode userspace"
        )
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            problems.append(
                f"--impair-mode kernel needs `{tool}` on PATH (Debian: apt-get install {package}; "
                "scripts/install-system-deps installs it)"
            )
    if problems:
        raise ConfigError("; ".join(problems))


def enter(name: str) -> None:
    """Move the calling thread into namespace ``name``: call it before the process opens any socket.

    Python 3.11 has no ``os.setns``, hence libc. A socket stays in the namespace it was
    created in, and threads started afterwards inherit the caller's namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise NetnsError(f"setns into network namespace {name}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def _run(*cmd: str, stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"`{' '.join(cmd)}` failed: {exc}") from None
    if proc.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class KernelLink:
    """One namespace, its veth pair and its nftables table (``open_link`` creates and removes them)."""

    name: str
    slot: int

    @property
    def host_ip(self) -> str:
        return str(_slot_network(self.slot)[1])

    @property
    def client_ip(self) -> str:
        return str(_slot_network(self.slot)[2])

    @property
    def host_dev(self) -> str:
        return f"vlt{self.slot}h"

    @property
    def client_dev(self) -> str:
        return f"vlt{self.slot}c"

    def _create(self) -> None:
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.host_dev, "type", "veth", "peer", "name", self.client_dev, "netns", self.name)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_dev)
        _run("ip", "link", "set", self.host_dev, "up")
        _run("ip", "-n", self.name, "addr", "add", f"{self.client_ip}/30", "dev", self.client_dev)
        _run("ip", "-n", self.name, "link", "set", self.client_dev, "up")
        _run("ip", "-n", self.name, "link", "set", "lo", "up")

    def ruleset(self, imp: ImpairmentConfig) -> str:
        """The table for one impairment point, replacing any previous one (and its counters) atomically."""
        threshold = round(imp.loss_pct * SCALE / 100)
        lines = [f"table netdev {TABLE}", f"delete table netdev {TABLE}", f"table netdev {TABLE} {{"]
        lines += [f"  counter {d}_{kind} {{}}" for d in DIRECTIONS for kind in ("packets", "dropped")]
        for direction, hook in (("down", "ingress"), ("up", "egress")):
            lines += [
                f"  chain {direction} {{",
                f'    type filter hook {hook} device "{self.client_dev}" priority 0; policy accept;',
                f'    ip protocol udp counter name "{direction}_packets"',
            ]
            if threshold and imp.direction in ("both", direction):
                lines.append(
                    f"    ip protocol udp numgen random mod {SCALE} < {threshold} "
                    f'counter name "{direction}_dropped" drop'
                )
            lines.append("  }")
        return "\n".join([*lines, "}", ""])

    def apply(self, imp: ImpairmentConfig) -> None:
        """Install (or replace, for the next point of a sweep) the table: counters start from zero."""
        _run("ip", "netns", "exec", self.name, "nft", "-f", "-", stdin=self.ruleset(imp))

    def report(self) -> dict[str, Any]:
        """Where the loss was applied, and each direction's UDP packets and drops since the last ``apply``."""
        listing = json.loads(
            _run("ip", "netns", "exec", self.name, "nft", "-j", "list", "counters", "table", "netdev", TABLE)
        )
        counts = {
            item["counter"]["name"]: int(item["counter"]["packets"])
            for item in listing["nftables"]
            if "counter" in item
        }
        return {
            "namespace": self.name,
            "host_ip": self.host_ip,
            "client_ip": self.client_ip,
            **{d: {"packets": counts[f"{d}_packets"], "dropped": counts[f"{d}_dropped"]} for d in DIRECTIONS},
        }

    def close(self) -> None:
        """Remove the veth pair, then the namespace (its table goes with it). Safe to call twice.

        The veth is deleted explicitly because a deleted namespace is torn down
        asynchronously: the pair would linger in the root namespace for a while.
        """
        with contextlib.suppress(NetnsError):
            _run("ip", "link", "del", self.host_dev)
        if (NETNS_DIR / self.name).exists():
            _run("ip", "netns", "del", self.name)


@contextlib.contextmanager
def open_link() -> Iterator[KernelLink]:
    """Create a namespace and its link (no table yet: ``apply`` installs it); remove both on exit, Ctrl-C included."""
    preflight()
    with open(LOCK_PATH, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the slot's address is assigned: runs never share a slot
        _remove_stale()
        slot = _free_slot()
        link = KernelLink(name=f"{NAME_PREFIX}{os.getpid()}-{slot}", slot=slot)
        try:
            link._create()
        except BaseException:
            link.close()
            raise
    try:
        yield link
    finally:
        link.close()


def _slot_network(slot: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(SUBNET.network_address) + 4 * slot, 30))


def _free_slot() -> int:
    """A /30 of SUBNET that overlaps no address of the root namespace and whose veth name is free.

    The search starts at a pid-derived slot, so concurrent runs usually land apart even before the lock.
    """
    links = json.loads(_run("ip", "-j", "addr", "show"))
    names = {link.get("ifname") for link in links}
    networks = [
        ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
        for link in links
        for addr in link.get("addr_info", [])
        if addr.get("family") == "inet"
    ]
    for i in range(SLOTS):
        slot = (os.getpid() + i) % SLOTS
        if f"vlt{slot}h" not in names and not any(_slot_network(slot).overlaps(n) for n in networks):
            return slot
    raise NetnsError(f"no free /30 left in {SUBNET} for a harness veth pair")


def _remove_stale() -> None:
    """Remove namespaces left by harness runs whose process is gone (killed before it could clean up)."""
    for path in NETNS_DIR.glob(f"{NAME_PREFIX}*-*"):
        pid, _, slot = path.name.removeprefix(NAME_PREFIX).partition("-")
        if pid.isdigit() and slot.isdigit() and not Path(f"/proc/{pid}").exists():
            KernelLink(name=path.name, slot=int(slot)).close()
