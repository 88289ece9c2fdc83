"""One host to N viewers through the cascade: the load-test harness against a scaled deployment.

``vitrine serve`` on Redis (signaling plus the origin worker) and ``--relays`` more ``vitrine media``
processes; the harness (``python -m loadtest run --scenario live``) runs beside them on the same
machine, its host publishing the harness's standard pre-encoded source and its viewers watching
(each decodes one frame, then counts RTP and measures glass-to-glass). While it runs, this script
samples every worker's heartbeat (participants, ``packets_out``) and CPU, and reports the forwarded
packets per second per worker core over the steady window (every viewer joined, before the end).

    python -m loadtest.bench.live_cascade --viewers 300 --relays 1 --duration 30 --out docs/bench/live-cascade.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from loadtest.bench import (
    API_KEY,
    ServerProcess,
    machine_facts,
    proc_cpu_seconds,
    progress,
    publish,
    udp_rcvbuf_errors,
)
from loadtest.server import with_parent_death
from vitrine.core.state.redis_state import open_redis_coordination


def _start_relays(server: ServerProcess, count: int) -> list[subprocess.Popen[bytes]]:
    env = server.env()
    procs = []
    for _ in range(count):
        log = tempfile.NamedTemporaryFile(prefix="vitrine-media-", suffix=".log", delete=False)  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                with_parent_death([sys.executable, "-m", "vitrine.cli", "media"]),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _sample(redis_url: str, stop: threading.Event, samples: list[dict[str, Any]]) -> None:
    """Every 0.5 s: each worker's heartbeat counters and its process CPU."""

    async def loop() -> None:
        state = await open_redis_coordination(redis_url)
        try:
            while not stop.is_set():
                row: dict[str, Any] = {"t": time.monotonic(), "workers": {}}
                for node in await state.nodes.live_workers():
                    pid = node.stats.get("pid", 0)
                    try:
                        cpu = proc_cpu_seconds(pid)
                    except OSError:
                        continue
                    row["workers"][node.id] = {
                        "participants": node.participants,
                        "cpu_s": cpu,
                        "stats": node.stats,
                        "packets_out": node.stats.get("packets_out", 0),
                        "packets_in": node.stats.get("packets_in", 0),
                        "heartbeat_ms": node.heartbeat_ms,
                    }
                samples.append(row)
                await asyncio.sleep(0.5)
        finally:
            await state.close()

    asyncio.run(loop())


def _steady(samples: list[dict[str, Any]], viewers: int) -> dict[str, Any]:
    """Rates between the first sample with every viewer placed (plus 3 s) and the last one (minus 1 s)."""
    full = [s for s in samples if sum(w["participants"] for w in s["workers"].values()) >= viewers]
    if len(full) < 4:
        return {"error": "the viewers never all joined"}
    start = next(s for s in full if s["t"] >= full[0]["t"] + 3.0)
    end = next(s for s in reversed(full) if s["t"] <= full[-1]["t"] - 1.0)
    elapsed = end["t"] - start["t"]
    per_worker = {}
    for worker, first in start["workers"].items():
        last = end["workers"].get(worker)
        if last is None:
            continue
        cores = (last["cpu_s"] - first["cpu_s"]) / elapsed
        packets = (last["packets_out"] - first["packets_out"]) / elapsed  # heartbeat-granular counters
        per_worker[worker] = {
            "participants": last["participants"],
            "cores": round(cores, 3),
            "received_packets_per_s": round((last["packets_in"] - first["packets_in"]) / elapsed),
            "forwarded_packets_per_s": round(packets),
            "packets_per_s_per_core": round(packets / cores) if cores > 0 else None,
        }
        per_worker[worker]["counters_at_end"] = {
            k: last["stats"].get(k)
            for k in ("packets_in", "packets_out", "retransmitted", "keyframe_requests", "nacks_upstream")
        }
    total_packets = sum(w["forwarded_packets_per_s"] for w in per_worker.values())
    total_cores = sum(w["cores"] for w in per_worker.values())
    return {
        "window_s": round(elapsed, 1),
        "workers": per_worker,
        "forwarded_packets_per_s": total_packets,
        "worker_cores": round(total_cores, 3),
        "packets_per_s_per_worker_core": round(total_packets / total_cores) if total_cores else None,
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    redis.Redis.from_url(args.redis_url).flushdb()
    # The origin worker in the server's process, the relays beside it (VITRINE_MEDIA_WORKERS=0).
    server = ServerProcess(redis_url=args.redis_url, max_participants=args.viewers + 50, serve_workers="0")
    server.start()
    relays = _start_relays(server, args.relays)
    samples: list[dict[str, Any]] = []
    udp_drops_before = udp_rcvbuf_errors()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(args.redis_url, stop, samples), daemon=True)
    report_path = Path(tempfile.mkdtemp(prefix="live-cascade-")) / "report.json"
    try:
        time.sleep(3)  # the relays register
        sampler.start()
        progress(f"1 host -> {args.viewers} viewers over {1 + args.relays} workers, {args.duration} s")
        command = [
            sys.executable,
            "-m",
            "loadtest",
            "run",
            "--url",
            server.url,
            "--api-key",
            API_KEY,
            "--api-secret",
            server.secret,
            "--rtc-interface",
            "127.0.0.1",
            "--scenario",
            "live",
            "--viewers",
            str(args.viewers),
            "--duration",
            str(args.duration),
            "--shape",
            args.shape,
            "--join-rate",
            str(args.join_rate),
            "--workers",
            str(args.harness_workers),
            "--join-timeout",
            "60",
            "--json",
            str(report_path),
            "--no-progress",
        ]
        harness = subprocess.run(command, env=os.environ, capture_output=True, text=True)
    finally:
        stop.set()
        sampler.join(10)
        for proc in relays:
            proc.terminate()
        server.stop()
    if not report_path.exists():
        raise RuntimeError(f"the harness wrote no report:\n{harness.stdout[-3000:]}\n{harness.stderr[-3000:]}")
    report = json.loads(report_path.read_text())
    return {
        "benchmark": "live_cascade",
        "viewers": args.viewers,
        "workers": 1 + args.relays,
        "command": " ".join(sys.argv),
        "harness_command": " ".join(command[3:]).replace(server.secret, "***"),  # a throwaway, still a secret
        "harness_exit": harness.returncode,
        "forwarding": _steady(samples, args.viewers),
        "udp_rcvbuf_errors": udp_rcvbuf_errors() - udp_drops_before,
        "source": {k: report["config"].get(k) for k in ("source", "video_width", "video_height", "fps", "audio")},
        "summary": {k: v for k, v in report["summary"].items() if k != "impairment"},
        "slo": report["slo"],
        "harness_health": report["harness"],
        "report": {k: v for k, v in report.items() if k != "clients"},
        "machine": machine_facts(),
    }


def _join_rate(command: str) -> str:
    return command.split("--join-rate ")[1].split()[0] if "--join-rate" in command else "25"


def plot_runs(results: list[dict[str, Any]], path: Path) -> None:
    """Frame rate, glass-to-glass p95 and forwarded packets per worker core against the audience."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(results, key=lambda r: (r["viewers"], r["command"]))
    labels = [f"{r['viewers']}\n{_join_rate(r['command'])}/s" for r in runs]
    fig, (fps_ax, g2g_ax, pkt_ax) = plt.subplots(1, 3, figsize=(12, 4))
    fps_ax.bar(labels, [r["summary"]["media"]["frame_rate"]["p50"] for r in runs])
    fps_ax.axhline(29, color="red", linestyle="--", linewidth=1, label="target ≥ 29 fps")
    fps_ax.set_ylim(0, 32)
    fps_ax.set_title("delivered fps, median", fontsize=9)
    g2g_ax.bar(labels, [r["summary"]["media"]["glass_to_glass_ms"]["p95"] for r in runs])
    g2g_ax.axhline(250, color="red", linestyle="--", linewidth=1, label="target p95 < 250 ms")
    g2g_ax.set_title("glass-to-glass p95 (ms)", fontsize=9)
    pkt_ax.bar(labels, [r["forwarding"]["packets_per_s_per_worker_core"] for r in runs])
    pkt_ax.axhline(35_000, color="gray", linestyle="--", linewidth=1, label="LiveKit, published: 35k")
    pkt_ax.set_title("forwarded packets/s per worker core", fontsize=9)
    for ax in (fps_ax, g2g_ax, pkt_ax):
        ax.set_xlabel("viewers, join rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("1 host, viewers over 2 worker processes (cascade), harness beside them on 2 cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plot", nargs="+", type=Path, metavar="JSON", help="only plot these earlier results into --out (a .png)"
    )
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--relays", type=int, default=1, help="vitrine media processes beside the origin")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--shape", choices=("burst", "ramp"), default="ramp")
    parser.add_argument("--join-rate", type=float, default=25.0)
    parser.add_argument("--harness-workers", type=int, default=4)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.plot:
        plot_runs([json.loads(p.read_text()) for p in args.plot], args.out)
        return
    publish(benchmark(args), args.out, None, bulky=("report", "machine"))


if __name__ == "__main__":
    main()
