"""One publisher to N subscribers on ONE media worker (``vitrine serve``).

    python -m loadtest.bench.fanout --max-subscribers 200 --step 25 --out docs/bench/fanout.json

The worker is a ``vitrine serve`` subprocess, so its CPU comes straight from
/proc/<pid>/stat. The publisher (640x480 30 fps MovingPatternTrack, video only)
runs in its own process. Subscribers are cheap on purpose: they never decode;
each one's video receiver is tapped (``media.taps.tap_receiver``) with a handler
that counts RTP packets and frames (a frame ends with the RTP marker bit) and
records arrival times. They live in K subscriber processes (N/K each).

For N = step, 2*step, ... max: grow to N connected subscribers, settle, then
measure for ``--window`` seconds: worker CPU (cores, per subscriber, per
forwarded packet), each subscriber's delivered fps (median and p10 reported),
publisher->subscriber frame latency (the publisher notes when it sends each
frame's last packet; subscribers note when it arrives; CLOCK_MONOTONIC is
shared by processes), and the CPU of every other process, so a saturated
client or a busy machine is visible. Stops early when the median fps drops
below ``--stop-fps`` or joins fail. Then, unless ``--no-profile``, profiles the
worker with py-spy at the last step (after the measurement, so it costs nothing).

Client processes keep plain aiortc DTLS timers by default (``--client-dtls-accelerator
off``): with media.taps.HandshakeAccelerator on both ends a stray retransmission can
bounce for ever and burn CPU on both sides (docs/bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from loadtest.bench import (
    CpuMeter,
    Publisher,
    ServerProcess,
    install_uvloop,
    keepalive,
    loopback_only,
    machine_facts,
    mint,
    percentile,
    proc_cpu_seconds,
    progress,
    publisher_rate,
    set_client_dtls_accelerator,
    stop_process,
    summary,
)

ROOM = "bench-fanout"
JOIN_TIMEOUT_S = 20.0
FIRST_FRAME_TIMEOUT_S = 15.0
CHILD_REPLY_TIMEOUT_S = 120.0
TARGET_FPS = 29.0


# -- subscriber processes ---------------------------------------------------------------


class CountingSubscriber:
    """A VitrineClient whose receivers never decode: RTP is counted and timed, then dropped."""

    def __init__(self, url: str, token: str, name: str) -> None:
        from loadtest.client import VitrineClient

        self.client = VitrineClient(url, token, name=name)
        self.client.pc.on("track", self._on_track)
        self.packets = self.frames = self.bytes = 0
        self.first_frame = asyncio.Event()
        self.recording = False
        self.arrivals: list[tuple[int, float]] = []  # (RTP timestamp, monotonic arrival) of marker packets
        self.w_packets = self.w_frames = self.w_bytes = 0
        self.pinger: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.client.connect(timeout=JOIN_TIMEOUT_S)
        self.pinger = asyncio.create_task(keepalive(self.client))

    def healthy(self) -> bool:
        return self.client.pc.connectionState == "connected" and self.client.leave_notice is None

    async def close(self) -> None:
        if self.pinger is not None:
            self.pinger.cancel()
        await asyncio.wait_for(self.client.close(), 10)

    def _on_track(self, track: Any) -> None:
        from media import taps

        receiver = next(t.receiver for t in self.client.pc.getTransceivers() if t.receiver.track is track)
        taps.tap_receiver(receiver, self._on_video if track.kind == "video" else self._on_other)

    async def _on_video(self, packet: Any, codec: Any) -> None:
        self.packets += 1
        self.bytes += len(packet.payload)
        if packet.marker:
            self.frames += 1
            self.first_frame.set()
            if self.recording:
                self.arrivals.append((packet.timestamp, time.monotonic()))

    async def _on_other(self, packet: Any, codec: Any) -> None:
        return None

    def start_window(self) -> None:
        self.arrivals = []
        self.w_packets, self.w_frames, self.w_bytes = self.packets, self.frames, self.bytes
        self.recording = True

    def stop_window(self, elapsed: float) -> dict[str, Any]:
        self.recording = False
        times = [t for _, t in self.arrivals]
        gaps = [(b - a) * 1000 for a, b in zip(times, times[1:])]
        return {
            "fps": round((self.frames - self.w_frames) / elapsed, 3),
            "packets_per_s": round((self.packets - self.w_packets) / elapsed, 2),
            "kbit_per_s": round((self.bytes - self.w_bytes) * 8 / elapsed / 1000, 2),
            "max_gap_ms": round(max(gaps), 1) if gaps else None,
            "arrivals": self.arrivals,
        }


def _client_flights_resent() -> int:
    from media import taps

    return getattr(getattr(taps, "HandshakeAccelerator", None), "dtls_flights_resent", 0)


async def _subscriber_host(
    url: str,
    secret: str,
    port: int,
    index: int,
    conn: Connection,
    join_concurrency: int,
    lifetime_s: float,
    accelerator: bool,
) -> None:
    loopback_only()
    set_client_dtls_accelerator(accelerator)
    subs: list[CountingSubscriber] = []
    deadline = time.monotonic() + lifetime_s
    serial = 0

    async def join_one(semaphore: asyncio.Semaphore, sub: CountingSubscriber) -> dict[str, Any]:
        async with semaphore:
            t0 = time.monotonic()
            try:
                await sub.connect()
                joined = time.monotonic()
            except Exception as exc:
                return {"ok": False, "error": f"join: {type(exc).__name__}: {exc}"}
        try:
            await asyncio.wait_for(sub.first_frame.wait(), FIRST_FRAME_TIMEOUT_S)
        except TimeoutError:
            return {"ok": False, "error": "no frame within timeout", "join_ms": (joined - t0) * 1000}
        return {"ok": True, "join_ms": (joined - t0) * 1000, "first_frame_ms": (time.monotonic() - t0) * 1000}

    try:
        while time.monotonic() < deadline:
            if not conn.poll():
                await asyncio.sleep(0.02)
                continue
            command, arg = conn.recv()
            if command == "grow":
                semaphore = asyncio.Semaphore(join_concurrency)
                new = []
                for _ in range(max(0, arg - len(subs))):
                    serial += 1
                    token = mint(secret, port, ROOM, f"sub-{index}-{serial}", "viewer")
                    new.append(CountingSubscriber(url, token, f"sub-{index}-{serial}"))
                results = await asyncio.gather(*(join_one(semaphore, s) for s in new))
                for sub, res in zip(new, results):
                    if res["ok"]:
                        subs.append(sub)
                    else:
                        with contextlib.suppress(Exception):
                            await sub.close()
                conn.send(
                    {
                        "connected": len(subs),
                        "joined_now": sum(r["ok"] for r in results),
                        "failed": sum(not r["ok"] for r in results),
                        "errors": [r["error"] for r in results if not r["ok"]][:5],
                        "first_frame_ms": [round(r["first_frame_ms"], 1) for r in results if r["ok"]],
                    }
                )
            elif command == "measure":
                cpu0, t0, resent0 = proc_cpu_seconds(os.getpid()), time.monotonic(), _client_flights_resent()
                for sub in subs:
                    sub.start_window()
                await asyncio.sleep(arg)
                elapsed = time.monotonic() - t0
                per_sub = [sub.stop_window(elapsed) for sub in subs]
                conn.send(
                    {
                        "elapsed_s": elapsed,
                        "cores": (proc_cpu_seconds(os.getpid()) - cpu0) / elapsed,
                        "unhealthy": sum(not sub.healthy() for sub in subs),
                        "dtls_flights_resent": _client_flights_resent() - resent0,
                        "events_received": [len(sub.client.events) for sub in subs],
                        "subscribers": per_sub,
                    }
                )
            elif command == "stop":
                break
    finally:
        await asyncio.gather(*(s.close() for s in subs), return_exceptions=True)


def subscriber_host_main(
    url: str,
    secret: str,
    port: int,
    index: int,
    conn: Connection,
    join_concurrency: int,
    lifetime_s: float,
    use_uvloop: bool,
    accelerator: bool,
) -> None:
    if use_uvloop:
        install_uvloop()
    try:
        asyncio.run(_subscriber_host(url, secret, port, index, conn, join_concurrency, lifetime_s, accelerator))
    except Exception as exc:
        with contextlib.suppress(Exception):
            conn.send({"fatal": repr(exc)})


class SubscriberHost:
    def __init__(self, server: ServerProcess, index: int, args: argparse.Namespace) -> None:
        ctx = mp.get_context("spawn")
        self.index = index
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=subscriber_host_main,
            name=f"subscribers-{index}",
            daemon=True,
            args=(
                server.url,
                server.secret,
                server.port,
                index,
                child,
                args.join_concurrency,
                args.max_minutes * 60 + 60,
                not args.no_uvloop,
                args.client_dtls_accelerator == "on",
            ),
        )
        self.proc.start()

    @property
    def pid(self) -> int:
        pid = self.proc.pid
        assert pid is not None, "the process is started in __init__"
        return pid

    def send(self, command: str, arg: Any = None) -> None:
        self.conn.send((command, arg))

    async def reply(self, timeout: float = CHILD_REPLY_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.conn.poll():
            if time.monotonic() > deadline or not self.proc.is_alive():
                raise RuntimeError(
                    f"subscriber process {self.index} did not answer "
                    f"(alive={self.proc.is_alive()}, exit={self.proc.exitcode})"
                )
            await asyncio.sleep(0.05)
        message = self.conn.recv()
        if "fatal" in message:
            raise RuntimeError(f"subscriber process {self.index} failed: {message['fatal']}")
        return message

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.send("stop")
        stop_process(self.proc, timeout=20)


# -- measurement ---------------------------------------------------------------------------


def frame_latencies(per_sub: list[dict[str, Any]], sent: dict[int, float]) -> dict[str, Any]:
    """Publisher send -> subscriber arrival of each frame's last packet, and the fan-out spread."""
    pooled: list[float] = []
    sub_medians: list[float] = []
    by_frame: dict[int, list[float]] = {}
    for sub in per_sub:
        lat = []
        for ts, arrived in sub["arrivals"]:
            if ts in sent:
                lat.append((arrived - sent[ts]) * 1000)
                by_frame.setdefault(ts, []).append(arrived)
        pooled.extend(lat)
        median = percentile(lat, 50)  # None when this subscriber matched no frame
        if median is not None:
            sub_medians.append(median)
    spreads = [(max(v) - min(v)) * 1000 for v in by_frame.values() if len(v) >= max(2, len(per_sub) // 2)]
    return {
        "latency_ms": {
            "p50": percentile(pooled, 50),
            "p95": percentile(pooled, 95),
            "p99": percentile(pooled, 99),
            "max": round(max(pooled), 1) if pooled else None,
            "samples": len(pooled),
        },
        "per_subscriber_median_latency_ms": summary(sub_medians),
        "fanout_spread_ms": {"p50": percentile(spreads, 50), "p95": percentile(spreads, 95), "frames": len(spreads)},
    }


def worker_counters(server: ServerProcess) -> dict[str, float]:
    """/metrics from the worker; empty if a saturated worker does not answer in time."""
    try:
        return server.media_stats()
    except Exception as exc:
        progress(f"  (worker /metrics did not answer: {type(exc).__name__})")
        return {}


async def measure(
    server: ServerProcess, publisher: Publisher, hosts: list[SubscriberHost], window: float
) -> dict[str, Any]:
    pub0, media0 = publisher.stats(), worker_counters(server)
    pids = {"worker": server.pid, "publisher": publisher.pid or 0, "orchestrator": os.getpid()}
    pids.update({f"subscribers_{h.index}": h.pid for h in hosts})
    meter = CpuMeter(pids)
    for host in hosts:
        host.send("measure", window)
    await asyncio.sleep(window)
    cpu = meter.read()
    replies = [await host.reply(window + 60) for host in hosts]
    pub1, media1 = publisher.stats(), worker_counters(server)
    if not media0 or not media1:
        media0 = media1 = {}
    elapsed = cpu["elapsed_s"]
    sent = dict(publisher.sent_frames())
    per_sub = [s for r in replies for s in r["subscribers"]]
    fps = [s["fps"] for s in per_sub]
    packets_out = (media1.get("packets_out", 0) - media0.get("packets_out", 0)) / elapsed
    packets_in = (media1.get("packets_in", 0) - media0.get("packets_in", 0)) / elapsed
    worker_cores = cpu["cores"]["worker"]
    result = {
        "subscribers_measured": len(per_sub),
        "subscribers_disconnected": sum(r["unhealthy"] for r in replies),
        "fps": {
            "median": percentile(fps, 50),
            "p10": percentile(fps, 10),
            "min": min(fps) if fps else None,
            "max": max(fps) if fps else None,
            "mean": round(sum(fps) / len(fps), 3) if fps else None,
        },
        "max_gap_ms": summary([s["max_gap_ms"] for s in per_sub if s["max_gap_ms"] is not None]),
        "subscriber_kbit_per_s_median": percentile([s["kbit_per_s"] for s in per_sub], 50),
        "subscriber_packets_per_s_median": percentile([s["packets_per_s"] for s in per_sub], 50),
        "cpu": cpu,
        "worker_cores": worker_cores,
        "worker_packets_in_per_s": round(packets_in, 1),
        "worker_packets_out_per_s": round(packets_out, 1),
        "worker_retransmitted": media1.get("retransmitted", 0) - media0.get("retransmitted", 0),
        "worker_keyframe_requests": media1.get("keyframe_requests", 0) - media0.get("keyframe_requests", 0),
        "worker_us_per_forwarded_packet": round(worker_cores * 1e6 / packets_out, 1) if packets_out else None,
        "subscriber_process_cores": {f"subscribers_{h.index}": round(r["cores"], 3) for h, r in zip(hosts, replies)},
        "worker_counter_deltas": {
            k: media1[k] - media0.get(k, 0)
            for k in media1
            if k not in ("pid", "rooms", "participants", "published_tracks", "subscriptions")
        },
        "client_dtls_flights_resent": sum(r.get("dtls_flights_resent", 0) for r in replies),
        # Room events (participant_joined, ...) each subscriber got over WebSocket since it joined.
        "events_received_per_subscriber": summary([n for r in replies for n in r.get("events_received", [])]),
        "publisher": publisher_rate(pub0, pub1),
        "fps_per_subscriber": fps,
    }
    result.update(frame_latencies(per_sub, sent))
    return result


def run_py_spy(pid: int, svg: Path, raw: Path, seconds: int) -> dict[str, Any]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    out: dict[str, Any] = {}
    try:
        dump = subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
        out["dump"] = dump.stdout[-6000:] or dump.stderr[-2000:]
        for fmt, path in (("flamegraph", svg), ("raw", raw)):
            path.parent.mkdir(parents=True, exist_ok=True)
            command = [exe, "record", "-d", str(seconds), "-r", "100", "-f", fmt, "-o", str(path), "--pid", str(pid)]
            # --native shows time inside C code (uvloop, libsrtp, OpenSSL, the kernel send path).
            proc = subprocess.run(command + ["--native"], capture_output=True, text=True, timeout=seconds + 60)
            out[f"{fmt}_native"] = proc.returncode == 0
            if proc.returncode:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
            out[f"{fmt}_rc"] = proc.returncode
            if proc.returncode:
                out[f"{fmt}_stderr"] = proc.stderr[-2000:]
        if raw.exists():
            out["top_self"], out["top_inclusive"] = summarize_raw_profile(raw)
    except subprocess.TimeoutExpired as exc:
        out["error"] = f"py-spy timed out: {exc}"
    return out


def summarize_raw_profile(path: Path, top: int = 40) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self time and inclusive time per function, as % of the event-loop thread's samples.

    Stacks of helper threads (AnyIO's idle thread pool) are left out; py-spy already
    leaves out samples where the process was idle.
    """
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or "Thread._bootstrap" in stack:
            continue
        count = int(count_text)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for name in set(frames):
            incl_counts[name] = incl_counts.get(name, 0) + count

    def pct(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(((k, v) for k, v in counts.items() if v < total), key=lambda kv: -kv[1])[:top]
        return [("(samples)", total)] + [(k, round(100 * v / max(total, 1), 1)) for k, v in ranked]

    return pct(self_counts), pct(incl_counts)


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine_facts(), "config": vars(args).copy(), "steps": []}
    # One worker, in the server's process, as the figures in docs/benchmarks.md were taken (VITRINE_MEDIA_WORKERS=0).
    server = ServerProcess(max_participants=args.max_subscribers + 20, serve_workers="0")
    publisher: Publisher | None = None
    hosts: list[SubscriberHost] = []
    hard_deadline = time.monotonic() + args.max_minutes * 60
    try:
        progress(f"starting vitrine serve on port {server.port}")
        server.start()
        server.create_live_room(ROOM, args.max_subscribers + 10)
        publisher = Publisher(
            server,
            ROOM,
            with_audio=False,
            max_lifetime_s=args.max_minutes * 60 + 60,
            video=args.video,
            dtls_accelerator=args.client_dtls_accelerator == "on",
        )
        publisher.start()
        result["pids"] = {"worker": server.pid, "publisher": publisher.pid}
        progress(f"worker pid {server.pid}, publisher pid {publisher.pid}; baseline window (no subscribers)")
        await asyncio.sleep(2.0)
        base_pub0, base_media0 = publisher.stats(), server.media_stats()
        meter = CpuMeter({"worker": server.pid, "publisher": publisher.pid})
        await asyncio.sleep(args.baseline)
        base_cpu = meter.read()
        base_pub1, base_media1 = publisher.stats(), server.media_stats()
        result["baseline"] = {
            "cpu": base_cpu,
            "publisher": publisher_rate(base_pub0, base_pub1),
            "worker_packets_in_per_s": round(
                (base_media1["packets_in"] - base_media0["packets_in"]) / base_cpu["elapsed_s"], 1
            ),
        }
        progress(
            f"baseline: worker {base_cpu['cores']['worker']:.3f} cores; publisher {result['baseline']['publisher']}"
        )

        hosts = [SubscriberHost(server, i, args) for i in range(args.procs)]
        result["pids"].update({f"subscribers_{h.index}": h.pid for h in hosts})
        stop_reason = f"reached --max-subscribers {args.max_subscribers}"
        n = 0
        while n + args.step <= args.max_subscribers:
            if time.monotonic() > hard_deadline - (args.window + 30):
                stop_reason = "time budget (--max-minutes) exhausted"
                break
            n += args.step
            targets = [n // args.procs + (1 if i < n % args.procs else 0) for i in range(args.procs)]
            progress(f"N={n}: growing to {targets} subscribers per process")
            t0 = time.monotonic()
            for host, target in zip(hosts, targets):
                host.send("grow", target)
            try:
                grows = [await host.reply() for host in hosts]
            except Exception as exc:
                stop_reason = f"growing to N={n} failed: {exc}"
                progress(stop_reason)
                break
            connected = sum(g["connected"] for g in grows)
            failed = sum(g["failed"] for g in grows)
            first_frames = [v for g in grows for v in g["first_frame_ms"]]
            progress(
                f"  {connected} connected ({failed} failed) in {time.monotonic() - t0:.1f} s; new joins' "
                f"first frame p50 {percentile(first_frames, 50)} ms"
            )
            await asyncio.sleep(args.settle)
            step = {
                "n": n,
                "connected": connected,
                "join_failures": failed,
                "join_errors": [e for g in grows for e in g["errors"]][:5],
                "new_joins_first_frame_ms": summary(first_frames),
            }
            try:
                step.update(await measure(server, publisher, hosts, args.window))
            except Exception as exc:  # a saturated machine: keep what was measured so far
                stop_reason = f"measurement failed at N={n}: {type(exc).__name__}: {exc}"
                progress(stop_reason)
                break
            result["steps"].append(step)
            per_sub_cpu = step["worker_cores"] / max(connected, 1)
            progress(
                f"  N={n}: median fps {step['fps']['median']} p10 {step['fps']['p10']}; worker "
                f"{step['worker_cores']:.3f} cores ({per_sub_cpu * 1000:.2f} mcore/sub, "
                f"{step['worker_us_per_forwarded_packet']} us/pkt out, "
                f"{step['worker_packets_out_per_s']} pkt/s out); subscriber procs "
                f"{step['subscriber_process_cores']}; machine busy {step['cpu']['machine_busy_fraction']} "
                f"(others {step['cpu']['other_cores']} cores); "
                f"latency p50/p95 {step['latency_ms']['p50']}/{step['latency_ms']['p95']} ms; "
                f"publisher {step['publisher']['fps_generated']} fps; "
                f"disconnected {step['subscribers_disconnected']}; DTLS flights resent in the window: "
                f"worker {step['worker_counter_deltas'].get('dtls_flights_resent')}, "
                f"clients {step['client_dtls_flights_resent']}"
            )
            if failed:
                stop_reason = f"{failed} joins failed at N={n}"
                break
            if step["fps"]["median"] is not None and step["fps"]["median"] < args.stop_fps:
                stop_reason = f"median fps {step['fps']['median']} < {args.stop_fps} at N={n}"
                break
        result["stop_reason"] = stop_reason
        progress(f"sweep ended: {stop_reason}")
        if args.profile and result["steps"]:
            progress(
                f"profiling the worker with py-spy for {args.profile_seconds} s (x2: svg + raw) "
                f"at N={result['steps'][-1]['connected']}"
            )
            meter = CpuMeter({"worker": server.pid})
            result["profile"] = {
                "n": result["steps"][-1]["connected"],
                **run_py_spy(server.pid, Path(args.profile_svg), Path(args.profile_raw), args.profile_seconds),
            }
            result["profile"]["cpu_during_profiling"] = meter.read()
    finally:
        for host in hosts:
            host.stop()
        if publisher is not None:
            publisher.stop()
        server.stop()
        result["server_log_tail"] = server.log_tail(3000)
    result["summary"] = summarize(result)
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    steps = result["steps"]
    below = next((s for s in steps if s["fps"]["median"] is None or s["fps"]["median"] < TARGET_FPS), None)
    ok = [s for s in steps if below is None or s["n"] < below["n"]]  # every step before the first drop
    base = result.get("baseline", {}).get("cpu", {}).get("cores", {}).get("worker", 0.0)
    return {
        "max_n_at_or_above_29fps": max((s["n"] for s in ok), default=None),
        "first_n_below_29fps": below["n"] if below else None,
        "cpu_per_subscriber_mcores": {
            s["n"]: round(1000 * s["worker_cores"] / max(s["connected"], 1), 3) for s in steps
        },
        "marginal_cpu_per_subscriber_mcores": {
            s["n"]: round(1000 * (s["worker_cores"] - base) / max(s["connected"], 1), 3) for s in steps
        },
        "worker_baseline_cores": base,
        "publisher": result.get("baseline", {}).get("publisher"),
        "stop_reason": result.get("stop_reason"),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    ns = [s["n"] for s in steps]
    fig, (ax, ax3) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    ax.plot(ns, [s["fps"]["median"] for s in steps], "o-", color="tab:blue", label="median delivered fps")
    ax.plot(ns, [s["fps"]["p10"] for s in steps], "v--", color="tab:blue", alpha=0.6, label="p10 delivered fps")
    ax.axhline(TARGET_FPS, color="tab:blue", linestyle=":", linewidth=1)
    ax.set_ylabel("frames per second per subscriber")
    ax.set_ylim(0, 32)
    ax2 = ax.twinx()
    ax2.plot(ns, [s["worker_cores"] for s in steps], "s-", color="tab:red", label="worker CPU (cores)")
    ax2.plot(
        ns,
        [sum(s["subscriber_process_cores"].values()) for s in steps],
        "x:",
        color="tab:orange",
        label="all subscriber processes (cores)",
    )
    ax2.plot(
        ns,
        [s["cpu"]["machine_busy_cores"] for s in steps],
        "-",
        color="grey",
        alpha=0.5,
        label="whole machine busy (cores)",
    )
    ax2.set_ylabel(f"CPU (cores, machine has {result['machine']['nproc']})")
    ax2.set_ylim(0, max(2.05, max([s["cpu"]["machine_busy_cores"] for s in steps] + [0]) * 1.05))
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    pub = result.get("baseline", {}).get("publisher", {})
    ax.set_title(
        f"Vitrine fan-out, one worker process: 1 publisher ({result['config']['video']} 640x480 30 fps, "
        f"{pub.get('video_kbit_per_s')} kbit/s,\n{pub.get('video_packets_per_s')} pkt/s) -> N subscribers "
        f"in {result['config']['procs']} processes",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    ax3.plot(
        ns, [s["latency_ms"]["p50"] for s in steps], "o-", label="frame latency p50 (publisher send -> subscriber)"
    )
    ax3.plot(ns, [s["latency_ms"]["p95"] for s in steps], "^-", label="frame latency p95")
    ax3.plot(
        ns, [s["fanout_spread_ms"]["p50"] for s in steps], "s--", label="fan-out spread p50 (first to last subscriber)"
    )
    ax3.set_xlabel("subscribers (N)")
    ax3.set_ylabel("ms")
    ax3.set_yscale("log")
    ax3.grid(True, which="both", alpha=0.3)
    ax3.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-subscribers", type=int, default=200)
    parser.add_argument("--step", type=int, default=25)
    parser.add_argument("--procs", type=int, default=2, help="subscriber processes (K)")
    parser.add_argument("--window", type=float, default=10.0, help="measurement window per step (s)")
    parser.add_argument("--settle", type=float, default=2.0, help="pause after joins before measuring (s)")
    parser.add_argument("--baseline", type=float, default=5.0, help="no-subscriber window (s)")
    parser.add_argument("--join-concurrency", type=int, default=5, help="concurrent joins per subscriber process")
    parser.add_argument("--stop-fps", type=float, default=25.0, help="stop once the median fps drops below this")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="hard time budget for the sweep")
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio loops in subscriber processes")
    parser.add_argument(
        "--client-dtls-accelerator",
        choices=("on", "off"),
        default="off",
        help="let subscriber clients install media.taps.HandshakeAccelerator as VitrineClient does "
        "(on), or keep plain aiortc DTLS timers (off, default: see docs/bench/README.md)",
    )
    parser.add_argument(
        "--video",
        choices=("pattern", "noisy"),
        default="pattern",
        help="publisher content: pattern (MovingPatternTrack, default) or noisy (~500 kbit/s)",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip py-spy on the worker after the sweep (default: profile if py-spy is installed)",
    )
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--profile-svg", default="docs/bench/fanout-profile.svg")
    parser.add_argument("--profile-raw", default="/tmp/vitrine-fanout-profile.txt")
    parser.add_argument("--out", default="docs/bench/fanout.json")
    parser.add_argument("--plot", default="docs/bench/fanout.png")
    args = parser.parse_args(argv)
    loopback_only()
    result = asyncio.run(benchmark(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    if result["steps"]:
        plot(result, Path(args.plot))
    s = result["summary"]
    progress(
        f"max N with median >= {TARGET_FPS} fps: {s['max_n_at_or_above_29fps']}; first N below: "
        f"{s['first_n_below_29fps']}; worker mcores/subscriber: {s['cpu_per_subscriber_mcores']}"
    )
    progress(f"wrote {out} and {args.plot}")


if __name__ == "__main__":
    main()
