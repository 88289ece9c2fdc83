"""Kernel impairment (``--impair-mode kernel``): a real namespace, veth pair and nftables table, and a real run.

Needs root, ``ip`` and ``nft`` (CI runs as root; scripts/install-system-deps installs iproute2 and nftables).
Counts and states are asserted, never timings.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loadtest import cli, netns
from loadtest.config import ConfigError, ImpairmentConfig
from loadtest.report import loss_tolerance
from loadtest.schema import load_schema, validate

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 180
DATAGRAMS = 2000
RECV_TIMEOUT_S = 10.0
RCVBUF_FORCE = 33  # SO_RCVBUFFORCE (root): room for every datagram, so the socket itself drops none


def socket_in_namespace(name: str, address: str) -> socket.socket:
    """A UDP socket created inside namespace ``name`` (by a thread that entered it) and bound to ``address``."""
    made: list[socket.socket | BaseException] = []

    def create() -> None:
        try:
            netns.enter(name)
            made.append(udp_socket(address))
        except BaseException as exc:  # handed to the test thread
            made.append(exc)

    thread = threading.Thread(target=create)
    thread.start()
    thread.join(RECV_TIMEOUT_S)
    assert made, "the thread entering the namespace did not finish"
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def udp_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, RCVBUF_FORCE, 8 << 20)
    sock.bind((address, 0))
    sock.settimeout(RECV_TIMEOUT_S)
    return sock


def receive(sock: socket.socket, count: int) -> int:
    """Read up to ``count`` datagrams (each wait bounded), then check that nothing more is queued."""
    got = 0
    while got < count:
        try:
            sock.recv(64)
        except TimeoutError:
            break
        got += 1
    sock.setblocking(False)
    try:
        while True:
            sock.recv(64)
            got += 1
    except BlockingIOError:
        pass
    sock.settimeout(RECV_TIMEOUT_S)
    return got


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_the_namespace_link_drops_the_configured_udp_loss_and_is_removed() -> None:
    with netns.open_link() as link:
        assert (netns.NETNS_DIR / link.name).exists() and link_exists(link.host_dev)
        client = socket_in_namespace(link.name, link.client_ip)
        host = udp_socket(link.host_ip)
        # Before any table: one lossless exchange resolves ARP both ways.
        client.sendto(b"hello", host.getsockname())
        assert host.recv(64) == b"hello"
        host.sendto(b"hello", client.getsockname())
        assert client.recv(64) == b"hello"

        link.apply(ImpairmentConfig(loss_pct=20, mode="kernel"))
        for _ in range(DATAGRAMS):
            client.sendto(b"up", host.getsockname())
            host.sendto(b"down", client.getsockname())
        counters = link.report()
        assert counters["namespace"] == link.name
        for direction, receiver in (("up", host), ("down", client)):
            packets, dropped = counters[direction]["packets"], counters[direction]["dropped"]
            assert packets == DATAGRAMS
            assert abs(dropped / packets - 0.2) <= loss_tolerance(0.2, 1, packets), counters
            assert receive(receiver, packets - dropped) == packets - dropped  # the counter is the loss seen

        link.apply(ImpairmentConfig(loss_pct=50, direction="up", mode="kernel"))  # the next point of a sweep
        assert {d: link.report()[d] for d in ("down", "up")} == {
            "down": {"packets": 0, "dropped": 0},
            "up": {"packets": 0, "dropped": 0},
        }
        for _ in range(200):
            host.sendto(b"down", client.getsockname())
        assert link.report()["down"] == {"packets": 200, "dropped": 0}  # down is not impaired now
        assert receive(client, 200) == 200
        client.close()
        host.close()
    assert not (netns.NETNS_DIR / link.name).exists()
    assert not link_exists(link.host_dev)


def test_kernel_mode_takes_random_loss_with_an_embedded_server_only() -> None:
    parser = cli.build_parser()
    with pytest.raises(ConfigError, match="random loss only.*leave out --burst"):
        cli.config_from_args(
            parser.parse_args(["run", "--embedded", "--impair-mode", "kernel", "--loss", "5", "--burst", "3"])
        )
    with pytest.raises(ConfigError, match="needs --embedded"):
        cli.config_from_args(
            parser.parse_args(
                [
                    "run",
                    "--url",
                    "http://127.0.0.1:1",
                    "--api-key",
                    "k",
                    "--api-secret",
                    "s",
                    "--impair-mode",
                    "kernel",
                    "--loss",
                    "5",
                ]
            )
        )
    config = cli.config_from_args(
        parser.parse_args(["run", "--embedded", "--impair-mode", "kernel", "--loss", "0,5,10"])
    )
    assert config.is_sweep and config.point(5).impairment.mode == "kernel"
    assert config.point(5).impairment.link(0) is None  # no userspace impairment on top of the kernel's


def test_kernel_mode_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(
            ["run", "--url", "http://127.0.0.1:1", "--api-key", "k", "--api-secret", "s", "--impair-mode", "kernel"]
        )
        == cli.EXIT_USAGE
    )
    assert "--impair-mode kernel needs --embedded" in capsys.readouterr().err


def test_preflight_explains_a_missing_root_or_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "nft" else "/usr/sbin/ip")
    with pytest.raises(ConfigError) as error:
        netns.preflight()
    assert "needs root" in str(error.value) and "apt-get install nftables" in str(error.value)


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_a_kernel_impaired_run_reports_the_kernel_counters(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "run",
            "--embedded",
            "--scenario",
            "consult",
            "--pairs",
            "1",
            "--duration",
            "3",
            "--impair-mode",
            "kernel",
            "--loss",
            "10",
            "--json",
            str(out),
            "--no-progress",
            "--slo-join-p95",
            "100000",
            "--slo-max-failures",
            "100",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == cli.EXIT_OK, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert validate(report, load_schema()) == []
    impairment = report["summary"]["impairment"]
    assert impairment["mode"] == "kernel"
    kernel = impairment["kernel"]
    for direction in ("down", "up"):
        assert kernel[direction]["packets"] > 0 and kernel[direction]["dropped"] > 0, kernel
        assert kernel[direction]["configured_loss_pct"] == 10
        assert isinstance(kernel[direction]["loss_within_tolerance"], bool)
        assert impairment["measured"][direction]["packets"] == 0  # no userspace impairment on top
    assert isinstance(kernel["loss_within_tolerance"], bool)
    assert impairment["loss_verified"] == kernel["loss_within_tolerance"]
    assert all(client["impairment"] is None for client in report["clients"])
    assert "## Impairment (kernel)" in proc.stdout
    assert not (netns.NETNS_DIR / kernel["namespace"]).exists()
    addresses = json.loads(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True).stdout)
    assert kernel["host_ip"] not in {a["local"] for link in addresses for a in link.get("addr_info", [])}
