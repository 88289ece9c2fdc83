"""Join to first decoded frame, for an aiortc viewer on loopback.

    python -m loadtest.bench.join_latency --out docs/bench/join.json

Starts ``vitrine serve`` as a subprocess, puts a publisher (640x480 30 fps
MovingPatternTrack plus audio, in its own process) in a live room, then joins
viewers and times each one from just before the WebSocket opens to the first
decoded video frame (``await track.recv()``). Phases:

* one cold join (the server's first viewer; reported, not in the statistics);
* sequential: N joins one after another, each gets its frame and leaves;
* simultaneous: R rounds of C viewers started at the same instant.

Simultaneous viewers stop decoding once they have their first frame (their
receivers are switched to a no-op RTP tap) but stay connected until the round
ends, so clients that finished early do not steal CPU from those still joining.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from av import VideoFrame

from loadtest.bench import (
    CpuMeter,
    Publisher,
    ServerProcess,
    loopback_only,
    machine_facts,
    mint,
    progress,
    publisher_rate,
    stop_process,
    summary,
)

STAGES = ("ws_open", "joined", "offer", "answer_sent", "ice_connected", "connected")
RTP_MARKS = ("first_rtp", "first_marker", "next_frame_rtp")
ROOM = "bench-join"
JOIN_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 10.0


async def _drop(packet: Any, codec: Any) -> None:
    return None


def stop_decoding(client: Any) -> None:
    """Keep the peer connection up but stop feeding aiortc's jitter buffers and decoders."""
    from media import taps

    for transceiver in client.pc.getTransceivers():
        taps.tap_receiver(transceiver.receiver, _drop)


def _observe_video_rtp(client: Any, track: Any, marks: dict[str, float]) -> None:
    """Time the first video RTP packet, the end of the first frame (marker bit) and the next frame's
    first packet (aiortc's jitter buffer hands a frame to the decoder only when the next one starts).
    Observation only: every packet still goes to aiortc's own handler."""
    if track.kind != "video":
        return
    receiver = next(t.receiver for t in client.pc.getTransceivers() if t.receiver.track is track)
    original = receiver._handle_rtp_packet
    first_ts: list[int] = []

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        if "next_frame_rtp" not in marks:
            now = time.perf_counter()
            marks.setdefault("first_rtp", now)
            if first_ts and packet.timestamp != first_ts[0]:
                marks["next_frame_rtp"] = now
            elif packet.marker and not first_ts:
                marks["first_marker"] = now
                first_ts.append(packet.timestamp)
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle


async def timed_join(
    url: str, token: str, timeout: float = JOIN_TIMEOUT_S, start_at: float | None = None
) -> tuple[dict[str, Any], Any]:
    """One viewer: build the client, then time WebSocket open -> first decoded video frame."""
    from loadtest.client import JoinTimeline, VitrineClient

    client = VitrineClient(url, token)
    rtp_marks: dict[str, float] = {}
    client.pc.on("track", lambda track: _observe_video_rtp(client, track, rtp_marks))
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    client.timeline = JoinTimeline()  # the clock starts here, just before the WebSocket opens
    deadline = time.monotonic() + timeout
    sample: dict[str, Any] = {"first_frame_ms": None}
    try:
        await client.connect(timeout=timeout)
        video = await client.next_remote_track("video", timeout=max(deadline - time.monotonic(), 0.01))
        sample["track_ms"] = round((time.perf_counter() - client.timeline.start) * 1000, 2)
        frame = await asyncio.wait_for(video.track.recv(), max(deadline - time.monotonic(), 0.01))
        sample["first_frame_ms"] = round((time.perf_counter() - client.timeline.start) * 1000, 2)
        if not isinstance(frame, VideoFrame):
            raise TypeError(f"the video track gave a {type(frame).__name__}")
        sample["frame_size"] = [frame.width, frame.height]
    except Exception as exc:  # a failed join is a data point, not a crash
        sample["error"] = f"{type(exc).__name__}: {exc}"
    sample["stages_ms"] = {s: (None if (ms := client.timeline.ms(s)) is None else round(ms, 2)) for s in STAGES}
    for mark, at in rtp_marks.items():
        sample["stages_ms"][mark] = round((at - client.timeline.start) * 1000, 2)
    return sample, client


async def close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_S)


async def simultaneous_round(url: str, tokens: list[str], start_at: float) -> list[dict[str, Any]]:
    """Start every join at ``start_at``; once a client has its frame, it stops decoding and idles."""

    async def one(token: str) -> tuple[dict[str, Any], Any]:
        sample, client = await timed_join(url, token, start_at=start_at)
        if sample["first_frame_ms"] is not None:
            stop_decoding(client)
        return sample, client

    results = await asyncio.gather(*(one(t) for t in tokens))
    await asyncio.sleep(0.5)  # everyone connected at once for a moment, as in a real burst
    await asyncio.gather(*(close_quietly(c) for _, c in results))
    return [s for s, _ in results]


def round_child(url: str, tokens: list[str], start_at: float, conn: Connection) -> None:
    """A second client process for simultaneous rounds (``--client-procs 2``)."""
    loopback_only()
    try:
        conn.send(("ok", asyncio.run(simultaneous_round(url, tokens, start_at)), os.getpid()))
    except Exception as exc:
        conn.send(("error", repr(exc), os.getpid()))


async def run_round(server: ServerProcess, tokens: list[str], client_procs: int) -> tuple[list[dict[str, Any]], dict]:
    import multiprocessing as mp

    start_at = time.monotonic() + (3.0 if client_procs > 1 else 0.5)
    if client_procs <= 1:
        meter = CpuMeter({"worker": server.pid, "bench_clients": os.getpid()})
        joined = await simultaneous_round(server.url, tokens, start_at)
        return joined, meter.read()
    ctx = mp.get_context("spawn")
    shares = [tokens[i::client_procs] for i in range(client_procs)]
    children = []
    for i, share in enumerate(shares):
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=round_child, args=(server.url, share, start_at, child), daemon=True, name=f"joiners-{i}"
        )
        proc.start()
        children.append((proc, parent))
    await asyncio.sleep(max(0.0, start_at - time.monotonic() - 0.05))
    meter = CpuMeter({"worker": server.pid, **{f"clients_{i}": p.pid for i, (p, _) in enumerate(children)}})
    samples: list[dict[str, Any]] = []
    cpu: dict[str, Any] = {}
    try:
        for i, (_, parent) in enumerate(children):
            deadline = time.monotonic() + JOIN_TIMEOUT_S + CLOSE_TIMEOUT_S + 10
            while not parent.poll() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if i == 0:
                cpu = meter.read()
            if parent.poll():
                status, payload, _ = parent.recv()
                if status == "ok":
                    samples.extend(payload)
                else:
                    samples.extend({"first_frame_ms": None, "error": payload} for _ in shares[i])
            else:
                samples.extend({"first_frame_ms": None, "error": "client process timed out"} for _ in shares[i])
    finally:
        for proc, _ in children:
            stop_process(proc)
    return samples, cpu


def ok_latencies(samples: list[dict[str, Any]]) -> list[float]:
    return [s["first_frame_ms"] for s in samples if s.get("first_frame_ms") is not None]


def stage_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for stage in (*STAGES, *RTP_MARKS, "track_ms", "first_frame_ms"):
        if stage in STAGES or stage in RTP_MARKS:
            values = [s["stages_ms"].get(stage) for s in samples if s.get("first_frame_ms") is not None]
        else:
            values = [s.get(stage) for s in samples if s.get("first_frame_ms") is not None]
        values = [v for v in values if v is not None]
        out[stage] = summary(values)
    return out


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine_facts(), "config": vars(args).copy()}
    server = ServerProcess(max_participants=max(args.simultaneous * 2 + 10, 100))
    publisher: Publisher | None = None
    hard_deadline = time.monotonic() + args.max_minutes * 60
    try:
        progress(f"starting vitrine serve on port {server.port}")
        server.start()
        result["server"] = {"pid": server.pid, "url": server.url}
        server.create_live_room(ROOM, server.max_participants)
        publisher = Publisher(server, ROOM, with_audio=True, max_lifetime_s=args.max_minutes * 60 + 60)
        publisher.start()
        progress(f"worker pid {server.pid}; publisher connected (pid {publisher.pid}); letting it run 2 s")
        await asyncio.sleep(2.0)
        pub_before = publisher.stats()
        counter = 0

        def token() -> str:
            nonlocal counter
            counter += 1
            return mint(server.secret, server.port, ROOM, f"viewer-{counter}", "viewer")

        # Cold join: the server's first viewer.
        sample, client = await timed_join(server.url, token())
        await close_quietly(client)
        result["cold_join"] = sample
        progress(f"cold join: first frame {sample['first_frame_ms']} ms {sample.get('error', '')}")
        await asyncio.sleep(args.pause)

        # Sequential single joins.
        seq: list[dict[str, Any]] = []
        meter = CpuMeter({"worker": server.pid, "bench_clients": os.getpid(), "publisher": publisher.pid})
        for i in range(args.sequential):
            if time.monotonic() > hard_deadline:
                progress("time budget exhausted; stopping the sequential phase")
                break
            sample, client = await timed_join(server.url, token())
            await close_quietly(client)
            seq.append(sample)
            progress(
                f"sequential {i + 1}/{args.sequential}: first frame {sample['first_frame_ms']} ms "
                f"(connected {sample['stages_ms']['connected']}) {sample.get('error', '')}"
            )
            await asyncio.sleep(args.pause)
        result["sequential"] = {
            "samples": seq,
            "summary": summary(ok_latencies(seq)),
            "failures": sum(s.get("first_frame_ms") is None for s in seq),
            "stages": stage_summary(seq),
            "cpu": meter.read(),
        }
        pub_after = publisher.stats()
        result["publisher"] = publisher_rate(pub_before, pub_after)

        # Simultaneous rounds.
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            if time.monotonic() > hard_deadline:
                progress("time budget exhausted; stopping the simultaneous phase")
                break
            await asyncio.sleep(2.0)
            tokens = [token() for _ in range(args.simultaneous)]
            progress(
                f"simultaneous round {r + 1}/{args.rounds}: {len(tokens)} joins "
                f"in {args.client_procs} client process(es)"
            )
            before = server.media_stats()
            samples, cpu = await run_round(server, tokens, args.client_procs)
            after = server.media_stats()
            resent = "dtls_flights_resent"
            cpu["worker_dtls_flights_resent"] = after.get(resent, 0) - before.get(resent, 0)
            lat = ok_latencies(samples)
            rounds.append(
                {
                    "samples": samples,
                    "summary": summary(lat),
                    "failures": sum(s.get("first_frame_ms") is None for s in samples),
                    "stages": stage_summary(samples),
                    "cpu": cpu,
                }
            )
            s = rounds[-1]["summary"]
            progress(
                f"  round {r + 1}: p50 {s['p50']} p95 {s['p95']} max {s['max']} ms, "
                f"failures {rounds[-1]['failures']}, cpu {cpu.get('cores')}"
            )
        with contextlib.suppress(Exception):
            result["worker_counters_at_end"] = server.media_stats()
        pooled = [s for rnd in rounds for s in rnd["samples"]]
        result["simultaneous"] = {
            "clients_per_round": args.simultaneous,
            "client_procs": args.client_procs,
            "rounds": rounds,
            "pooled_summary": summary(ok_latencies(pooled)),
            "pooled_stages": stage_summary(pooled),
        }
    finally:
        if publisher is not None:
            publisher.stop()
        server.stop()
        result["server_log_tail"] = server.log_tail(2000)
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 2]})

    def cdf(values: list[float], label: str, **kw: Any) -> None:
        data = sorted(values)
        if data:
            ax.step(data, [(i + 1) / len(data) for i in range(len(data))], where="post", label=label, **kw)

    seq = ok_latencies(result["sequential"]["samples"])
    cdf(seq, f"single join, sequential (n={len(seq)})", linewidth=2)
    sim = result.get("simultaneous", {})
    for i, rnd in enumerate(sim.get("rounds", [])):
        lat = ok_latencies(rnd["samples"])
        cdf(lat, f"{sim['clients_per_round']} simultaneous, round {i + 1} (n={len(lat)})", alpha=0.8)
    for x, label, style, color in (
        (90, "target 90 ms", "-", "green"),
        (73, "Janus 73 ms", "--", "grey"),
        (115, "naive aiortc 115 ms", ":", "grey"),
        (921, "Janus 20-sim p50 921 ms", "--", "tab:purple"),
        (3303, "naive aiortc 20-sim p50 3303 ms", ":", "tab:purple"),
    ):
        ax.axvline(x, color=color, linestyle=style, linewidth=1)
        ax.text(x, 0.02, " " + label, rotation=90, va="bottom", fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_xlim(50, 4000)
    ax.set_xlabel("join to first decoded frame (ms, log scale)")
    ax.set_ylabel("fraction of joins")
    ax.set_title("Vitrine join latency: aiortc viewer on loopback, vitrine serve, 640x480 30 fps publisher")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center right", fontsize=8)

    # Median stage timeline per phase: where the time goes.
    rows = [("sequential", result["sequential"]["stages"])]
    rows += [(f"simult. round {i + 1}", rnd["stages"]) for i, rnd in enumerate(sim.get("rounds", []))]
    segments = (
        ("ws_open", "WebSocket open"),
        ("joined", "joined"),
        ("answer_sent", "offer+answer"),
        ("connected", "ICE+DTLS connected"),
        ("first_rtp", "waiting for video (first RTP: keyframe)"),
        ("next_frame_rtp", "next frame's RTP (jitter buffer release)"),
        ("first_frame_ms", "decoded"),
    )
    colors = plt.get_cmap("tab10")
    for y, (_, stages) in enumerate(rows):
        prev = 0.0
        for k, (key, name) in enumerate(segments):
            value = (stages.get(key) or {}).get("p50")
            if value is None:
                continue
            bx.barh(y, value - prev, left=prev, color=colors(k), label=name if y == 0 else None)
            prev = value
        bx.text(prev + 3, y, f"{prev:.0f} ms", va="center", fontsize=8)
    bx.set_yticks(range(len(rows)), [r[0] for r in rows])
    bx.invert_yaxis()
    bx.set_xlabel("median time since the WebSocket was opened (ms); each stage's median, stacked")
    bx.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    bx.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/bench/join.json")
    parser.add_argument("--plot", default="docs/bench/join_latency.png")
    parser.add_argument("--sequential", type=int, default=30, help="sequential single joins (default 30)")
    parser.add_argument("--simultaneous", type=int, default=20, help="joins per simultaneous round (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="simultaneous rounds (default 3)")
    parser.add_argument(
        "--client-procs",
        type=int,
        default=1,
        help="processes hosting the simultaneous clients (default 1: this process)",
    )
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between sequential joins")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="hard time budget for the run")
    parser.add_argument("--replot", metavar="JSON", help="only redraw the plot from an earlier result")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        return
    loopback_only()
    result = asyncio.run(benchmark(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot(result, Path(args.plot))
    seq, sim = result["sequential"]["summary"], result["simultaneous"]["pooled_summary"]
    progress(f"sequential single join: median {seq['p50']} ms, p95 {seq['p95']} ms (n={seq['n']})")
    progress(
        f"{args.simultaneous} simultaneous, pooled over rounds: p50 {sim['p50']} p95 {sim['p95']} max {sim['max']} ms"
    )
    progress(f"wrote {out} and {args.plot}")


if __name__ == "__main__":
    main()
