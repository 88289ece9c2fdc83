"""Benchmarks of the core path: join latency and single-worker fan-out.

Shared helpers live here: a ``vitrine serve`` child process (its CPU read
from /proc), join tokens minted in-process with the server's secret, a
publisher running in its own process, and small statistics helpers.

Every benchmark process must call ``taps.configure_host_candidates(["127.0.0.1"])``
(``loopback_only()``) so ICE stays on loopback and gathers no internet candidates.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from loadtest.server import API_KEY, ServerProcess, free_port, proc_cpu_seconds, stop_process  # noqa: F401 - re-exported

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes and CPU -------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def udp_rcvbuf_errors() -> int:
    """System-wide UDP receive-buffer drops (a saturated receiver shows up here)."""
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


class CpuMeter:
    """CPU used by some pids (cores) and by the machine over one window."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:  # a None pid (a process not started) reads NaN
        self.pids = pids
        self.t0 = time.monotonic()
        self.cpu0 = {name: _safe_cpu(pid) for name, pid in pids.items()}
        self.machine0 = machine_cpu()
        self.udp0 = udp_rcvbuf_errors()

    def read(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        busy1, total1 = machine_cpu()
        busy0, total0 = self.machine0
        cores = {name: round((_safe_cpu(pid) - self.cpu0[name]) / elapsed, 4) for name, pid in self.pids.items()}
        machine_busy = (busy1 - busy0) / elapsed
        return {
            "elapsed_s": round(elapsed, 3),
            "cores": cores,
            "machine_busy_cores": round(machine_busy, 3),
            # Everything else on this shared machine (other users' work, the kernel's softirqs, ...).
            "other_cores": round(machine_busy - sum(v for v in cores.values() if v == v), 3),
            "machine_busy_fraction": round((busy1 - busy0) / max(total1 - total0, 1e-9), 3),
            "udp_rcvbuf_errors": udp_rcvbuf_errors() - self.udp0,
        }


def _safe_cpu(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        return proc_cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return float("nan")


def mint(secret: str, port: int, room: str, identity: str, role: str, create: bool = False) -> str:
    from vitrine.core.auth import mint_token
    from vitrine.core.config import Settings
    from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role

    settings = Settings(api_key=API_KEY, api_secret=secret, port=port)
    grants = ROLE_DEFAULT_GRANTS[Role(role)].model_copy(update={"room_create": create})
    return mint_token(settings, room=room, identity=identity, role=Role(role), grants=grants, ttl_s=3600)


def set_client_dtls_accelerator(enabled: bool) -> None:
    """VitrineClient installs media.taps.HandshakeAccelerator (resend the last DTLS flight on any repeated
    handshake datagram, and after 100 ms of silence). The worker installs it too; with both ends doing
    so, one stray retransmission can bounce between them for ever (see docs/bench/README.md). With
    ``enabled=False`` this process's clients keep plain aiortc/OpenSSL timers, like a browser peer.
    Call before the first VitrineClient is built."""
    from media import taps

    accelerator = getattr(taps, "HandshakeAccelerator", None)
    if accelerator is not None and not enabled and not accelerator.installed:
        accelerator.installed = True  # install() now returns early: nothing is patched in this process


KEEPALIVE_S = 10.0


async def keepalive(client: Any, interval: float = KEEPALIVE_S) -> None:
    """Send the protocol's ``ping`` so the server's idle timeout (VITRINE_IDLE_TIMEOUT_S, 30 s)
    does not end a long-lived benchmark session: VitrineClient sends none by itself."""
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(interval)
            await client.send({"type": "ping"})


def loopback_only() -> None:
    from media import taps

    taps.configure_host_candidates(["127.0.0.1"])


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


# -- the publisher, in its own process -------------------------------------------------


def make_video_track(video: str) -> Any:
    """ "pattern": the tests' MovingPatternTrack (loadtest.source) at 640x480 (cheap to encode: about 35-50
    kbit/s, one packet per frame). "noisy": the same plus a 160x120 block of fresh noise each frame, so aiortc's
    VP8 encoder runs at its 500 kbit/s target (several packets per frame), closer to a real camera."""
    from loadtest.source import MovingPatternTrack

    if video == "pattern":
        return MovingPatternTrack(640, 480)

    import numpy as np
    from av import VideoFrame

    class NoisyPatternTrack(MovingPatternTrack):
        rng = np.random.default_rng(1)

        async def recv(self) -> VideoFrame:
            pts, time_base = await self.next_timestamp()
            image = np.zeros((self.height, self.width, 3), dtype=np.uint8)
            x = (self.count * 4) % self.width
            image[:, x : x + 16] = (255, 255, 255)
            image[:120, :160] = self.rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            self.count += 1
            frame = VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    return NoisyPatternTrack(640, 480)


def publisher_main(
    url: str,
    secret: str,
    port: int,
    room: str,
    with_audio: bool,
    conn: Connection,
    max_lifetime_s: float,
    video: str = "pattern",
    dtls_accelerator: bool = True,
) -> None:
    """Publish a 640x480 30 fps MovingPatternTrack (and optionally audio) until told to stop.

    Commands on ``conn``: "stats" (answers the video sender's counters) and "stop".
    """
    loopback_only()
    set_client_dtls_accelerator(dtls_accelerator)
    try:
        asyncio.run(_publisher(url, secret, port, room, with_audio, conn, max_lifetime_s, video))
    except Exception as exc:  # report and exit: the parent is waiting on the pipe
        with contextlib.suppress(Exception):
            conn.send(("error", repr(exc)))


async def _publisher(
    url: str,
    secret: str,
    port: int,
    room: str,
    with_audio: bool,
    conn: Connection,
    max_lifetime_s: float,
    video_kind: str,
) -> None:
    from aiortc.mediastreams import AudioStreamTrack

    from loadtest.client import VitrineClient

    video = make_video_track(video_kind)
    tracks: list[Any] = [video] + ([AudioStreamTrack()] if with_audio else [])
    client = VitrineClient(url, mint(secret, port, room, "publisher", "host"), tracks=tracks, name="publisher")
    deadline = time.monotonic() + max_lifetime_s
    sent_frames: collections.deque[tuple[int, float]] = collections.deque(maxlen=4000)
    pinger: asyncio.Task[None] | None = None
    try:
        await client.connect(timeout=20)
        pinger = asyncio.create_task(keepalive(client))
        await client.wait_connected(20)
        _record_sent_frames(client, sent_frames)
        conn.send(("ready", {"pid": os.getpid()}))
        while time.monotonic() < deadline:
            if conn.poll():
                command = conn.recv()
                if command == "stop":
                    break
                if command == "stats":
                    conn.send(("stats", await _sender_stats(client, video)))
                elif command == "frames":
                    conn.send(("frames", list(sent_frames)))
            await asyncio.sleep(0.05)
    finally:
        if pinger is not None:
            pinger.cancel()
        await asyncio.wait_for(client.close(), 10)


def _record_sent_frames(client: Any, out: collections.deque[tuple[int, float]]) -> None:
    """Note (RTP timestamp, time.monotonic()) as the publisher sends the last packet of each video frame.

    Observation only, on the benchmark's own publisher: it wraps the video sender's
    DTLS transport ``_send_rtp`` (aiortc private) and still sends every packet.
    CLOCK_MONOTONIC is shared by all processes, so subscribers' arrival times compare directly.
    """
    from aiortc.rtp import is_rtcp

    sender = next(s for s in client.pc.getSenders() if s.track is not None and s.track.kind == "video")
    transport = sender.transport
    original = transport._send_rtp
    ssrc = sender._ssrc.to_bytes(4, "big")

    async def send_rtp(data: bytes) -> None:
        if len(data) >= 12 and data[1] & 0x80 and data[8:12] == ssrc and not is_rtcp(data):
            out.append((int.from_bytes(data[4:8], "big"), time.monotonic()))
        await original(data)

    transport._send_rtp = send_rtp


async def _sender_stats(client: Any, video: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t": time.monotonic(),
        "frames_generated": video.count,
        "cpu_s": proc_cpu_seconds(os.getpid()),
        "pc_state": client.pc.connectionState,
        "closed_by_server": client.leave_notice,
    }
    for transceiver in client.pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        sender = transceiver.sender
        out["sender_has_track"] = sender.track is not None
        for stat in (await sender.getStats()).values():
            if stat.type == "outbound-rtp":
                out.update(packets_sent=stat.packetsSent, bytes_sent=stat.bytesSent)
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        if encoder is not None:
            out["encoder_target_bitrate"] = getattr(encoder, "target_bitrate", None)
    if "packets_sent" not in out:
        raise RuntimeError(f"the publisher has no video sender: {out}")
    return out


class Publisher:
    """Parent-side handle of the publisher process."""

    def __init__(
        self,
        server: ServerProcess,
        room: str,
        with_audio: bool,
        max_lifetime_s: float,
        video: str = "pattern",
        dtls_accelerator: bool = True,
    ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=publisher_main,
            daemon=True,
            name="publisher",
            args=(
                server.url,
                server.secret,
                server.port,
                room,
                with_audio,
                child,
                max_lifetime_s,
                video,
                dtls_accelerator,
            ),
        )
        self.pid: int | None = None

    def start(self, timeout: float = 40.0) -> None:
        self.proc.start()
        kind, payload = self._recv(timeout)
        if kind != "ready":
            raise RuntimeError(f"publisher failed: {payload}")
        self.pid = self.proc.pid

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        self.conn.send("stats")
        kind, payload = self._recv(timeout)
        if kind != "stats":
            raise RuntimeError(f"publisher failed: {payload}")
        return payload

    def _recv(self, timeout: float) -> tuple[str, Any]:
        try:
            if not self.conn.poll(timeout):
                raise TimeoutError("publisher did not answer")
            return self.conn.recv()
        except EOFError:
            raise RuntimeError(f"publisher process exited ({self.proc.exitcode})") from None

    def sent_frames(self, timeout: float = 10.0) -> list[tuple[int, float]]:
        """(RTP timestamp, monotonic send time) of the last few thousand video frames."""
        self.conn.send("frames")
        kind, payload = self._recv(timeout)
        if kind != "frames":
            raise RuntimeError(f"publisher failed: {payload}")
        return payload

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send("stop")
        stop_process(self.proc)


def publisher_rate(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    elapsed = after["t"] - before["t"]
    return {
        "window_s": round(elapsed, 3),
        "fps_generated": round((after["frames_generated"] - before["frames_generated"]) / elapsed, 2),
        "video_packets_per_s": round((after["packets_sent"] - before["packets_sent"]) / elapsed, 1),
        "video_kbit_per_s": round((after["bytes_sent"] - before["bytes_sent"]) * 8 / elapsed / 1000, 1),
        "bytes_per_packet": round(
            (after["bytes_sent"] - before["bytes_sent"]) / max(after["packets_sent"] - before["packets_sent"], 1), 1
        ),
        "encoder_target_bitrate": after.get("encoder_target_bitrate"),
        "publisher_process_cores": round((after["cpu_s"] - before["cpu_s"]) / elapsed, 3),
    }


# -- statistics and facts -------------------------------------------------------------


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None and NaN are left out."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(data[lo] + (data[hi] - data[lo]) * (pos - lo), 2)


def summary(values: Iterable[float | None]) -> dict[str, Any]:
    data = [v for v in values if v is not None]
    return {
        "n": len(data),
        "min": round(min(data), 2) if data else None,
        "p50": percentile(data, 50),
        "p90": percentile(data, 90),
        "p95": percentile(data, 95),
        "max": round(max(data), 2) if data else None,
        "mean": round(sum(data) / len(data), 2) if data else None,
    }


def machine_facts() -> dict[str, Any]:
    import aioice
    import aiortc
    import av

    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[:3]
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": loadavg,
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "aioice": aioice.__version__,
        "pyav": av.__version__,
        "kernel": platform.release(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **_git_facts(),
    }


def _git_facts() -> dict[str, Any]:
    """The code under test: other people change the server while benchmarks run."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "media", "signaling", "vitrine"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_head": head, "server_files_modified": [line[3:] for line in dirty if line.strip()]}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cdf_plot(
    path: Path, series: dict[str, list[float]], *, target_ms: float, xlabel: str, ylabel: str, title: str
) -> None:
    """One CDF per labelled series of milliseconds, with the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in series.items():
        values = sorted(values)
        ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], marker=".", markersize=3, label=label)
    ax.axvline(target_ms, color="red", linestyle="--", linewidth=1, label=f"target p95 {target_ms:g} ms")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def publish(
    result: dict[str, Any], out: Path | None, plot: Any = None, bulky: tuple[str, ...] = ("samples", "machine")
) -> None:
    """Print the result without its bulky keys; with ``out``, write all of it as JSON and ``plot`` it beside."""
    import json

    print(json.dumps({k: v for k, v in result.items() if k not in bulky}, indent=2))
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
        if plot is not None:
            plot(result, out.with_suffix(".png"))
