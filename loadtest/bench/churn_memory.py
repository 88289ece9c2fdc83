"""Server memory over many joins and leaves: does a finished peer connection give its memory back?

    python -m loadtest.bench.churn_memory --joins 1000 --out docs/bench/churn-memory.json
    python -m loadtest.bench.churn_memory --joins 1000 --source /tmp/vitrine-before \\
        --out docs/bench/churn-memory-before.json

Starts ``vitrine serve`` as a subprocess (from ``--source``, a ``git worktree`` of an earlier commit, for
a "before"), then runs consult calls one after another, ``--parallel`` at a time: in a fresh room, a
customer and an agent join, each publishing audio, connect, each receives the other's track, and both
leave. Every ``--sample-every`` joins, once the server has no participant left, its resident memory
(``VmRSS`` from /proc) is sampled. The run stops at ``--joins`` joins or ``--max-seconds``, whichever
comes first. A growth per 1,000 joins near zero after the warm-up means nothing keeps finished
connections; the CI test ``tests/test_peer_churn.py`` asserts it directly with weak references.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from pathlib import Path
from typing import Any

from loadtest.bench import ServerProcess, loopback_only, machine_facts, mint, progress, publish

JOIN_TIMEOUT_S = 20.0
QUIET_TIMEOUT_S = 20.0
WARMUP_JOINS = 100  # allocator pools, caches and the first certificate: not a leak


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


async def _call(server: ServerProcess, index: int) -> None:
    """One consult call: two participants publish audio to each other, then both leave."""
    from aiortc.mediastreams import AudioStreamTrack

    from loadtest.client import VitrineClient

    room = f"churn-{index}"
    clients = [
        VitrineClient(
            server.url,
            mint(server.secret, server.port, room, f"{role}-{index}", role, create=True),
            tracks=[AudioStreamTrack()],
        )
        for role in ("customer", "agent")
    ]
    try:
        for client in clients:
            await client.connect(timeout=JOIN_TIMEOUT_S)
        for client in clients:
            await client.next_remote_track("audio", timeout=JOIN_TIMEOUT_S)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10)


async def _quiet(server: ServerProcess) -> None:
    """Wait until the worker holds no participant: every call of the batch has left."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline and (await asyncio.to_thread(server.media_stats)).get("participants"):
        await asyncio.sleep(0.1)


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    loopback_only()
    # The worker in the server's process: one process's memory is the whole server's (VITRINE_MEDIA_WORKERS=0).
    server = ServerProcess(max_rooms=10_000, source=Path(args.source) if args.source else None, serve_workers="0")
    server.start()
    samples: list[dict[str, Any]] = [{"joins": 0, "rss_mb": rss_mb(server.pid), "s": 0.0}]
    failures = 0
    started = time.monotonic()
    calls = itertools.count()
    try:
        joins = 0
        while joins < args.joins and time.monotonic() - started < args.max_seconds:
            batch = min(args.sample_every, args.joins - joins) // 2
            for first in range(0, batch, args.parallel):
                outcomes = await asyncio.gather(
                    *(_call(server, next(calls)) for _ in range(min(args.parallel, batch - first))),
                    return_exceptions=True,
                )
                failures += sum(isinstance(o, BaseException) for o in outcomes)
            joins += 2 * batch
            await _quiet(server)
            samples.append({"joins": joins, "rss_mb": rss_mb(server.pid), "s": round(time.monotonic() - started, 1)})
            progress(f"{joins} joins: {samples[-1]['rss_mb']} MB")
    finally:
        server.stop()
    return {
        "benchmark": "churn_memory",
        "source": args.source or "this checkout",
        "joins": samples[-1]["joins"],
        "parallel_calls": args.parallel,
        "failed_calls": failures,
        "samples": samples,
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_end_mb": samples[-1]["rss_mb"],
        "mb_per_1000_joins_after_warmup": _growth(samples),
        "machine": machine_facts(),
    }


def _growth(samples: list[dict[str, Any]]) -> float | None:
    """Least-squares slope of RSS over joins past the warm-up, in MB per 1,000 joins."""
    points = [(s["joins"], s["rss_mb"]) for s in samples if s["joins"] >= WARMUP_JOINS]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return round(slope * 1000, 1)


def plot(runs: dict[str, dict[str, Any]], path: Path) -> None:
    """Server RSS over joins, one line per run (before and after the fix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, result in runs.items():
        xs = [s["joins"] for s in result["samples"]]
        ys = [s["rss_mb"] for s in result["samples"]]
        growth = result["mb_per_1000_joins_after_warmup"]
        ax.plot(xs, ys, marker=".", label=f"{label}: {growth:+g} MB per 1,000 joins")
    ax.set_xlabel("joins (each leaves again)")
    ax.set_ylabel("server resident memory (MB)")
    ax.set_title("vitrine serve memory over consult-call churn", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=1000, help="joins in all, two per call (default 1000)")
    parser.add_argument("--parallel", type=int, default=4, help="calls at a time (default 4)")
    parser.add_argument("--sample-every", type=int, default=50, help="joins between memory samples (default 50)")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop sampling after this long")
    parser.add_argument("--source", help="serve this checkout (a git worktree) instead of this one")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument(
        "--plot",
        nargs="+",
        type=Path,
        metavar="LABEL=JSON",
        help="only plot earlier results, e.g. before=docs/bench/churn-memory-before.json "
        "after=docs/bench/churn-memory.json, to the --out PNG",
    )
    args = parser.parse_args(argv)
    if args.plot:
        import json

        runs = {
            str(spec).split("=", 1)[0]: json.loads(Path(str(spec).split("=", 1)[1]).read_text()) for spec in args.plot
        }
        plot(runs, args.out)
        progress(f"wrote {args.out}")
        return
    publish(asyncio.run(benchmark(args)), args.out)


if __name__ == "__main__":
    main()
