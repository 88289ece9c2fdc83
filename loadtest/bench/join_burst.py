"""A burst of WHEP viewers joining one room at once: how many join, how fast, and the server's CPU per join.

    python -m loadtest.bench.join_burst --viewers 150 --out docs/bench/join-burst-150.json
    python -m loadtest.bench.join_burst --viewers 50 --no-media --out /tmp/join-cost.json   # a join's cost alone

Starts ``vitrine serve`` as a subprocess (its CPU is read from /proc), a publisher, then N WHEP viewers
(``loadtest/whip_client.py``) all at the same instant, from this process: each POSTs its offer, waits for its
connection (ICE and DTLS) and, with media, for its first decoded video frame. A viewer that has not got there
within ``--timeout`` (30 s, as in the Janus comparison of issue 17) counts as not joined.

With media, the publisher is a 640x480 30 fps pattern over ``/v1/rtc`` in its own process, and the server's CPU
for the burst includes forwarding to the viewers already in. ``--no-media`` publishes over WHIP from this process
a video track that never sends a frame, so the server's CPU over the burst is what the joins cost: the HTTP
request, admission, the peer connection, SDP, ICE, DTLS (and no RTP). ``--handshakes`` sets the server's
``VITRINE_MAX_HANDSHAKES_PER_WORKER`` (a large value: no bound, as before issue 17); ``--source`` serves another
checkout's code (a before).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from aiortc import MediaStreamTrack

from loadtest.bench import (
    API_KEY,
    Publisher,
    ServerProcess,
    loopback_only,
    machine_facts,
    mint,
    proc_cpu_seconds,
    progress,
    summary,
)
from loadtest.whip_client import WhipSession
from media import taps

ROOM = "bench-burst"


class IdleVideo(MediaStreamTrack):
    """A published video track that never yields a frame: the room has a track to bind, and no RTP flows."""

    kind = "video"

    async def recv(self) -> Any:
        await asyncio.Event().wait()


async def _drop(packet: Any, codec: Any) -> None:
    return None


async def _viewer(http: httpx.AsyncClient, token: str, start_at: float, timeout: float, media: bool) -> dict[str, Any]:
    session = WhipSession(http, "whep", ROOM, token)
    await session.offer()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    sample: dict[str, Any] = {"joined": False}
    try:
        await session.post()
        sample["answer_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        await session.wait_connected(max(deadline - time.monotonic(), 0.01))
        sample["connected_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if media:
            receiver = session.received("video")
            if receiver is None:
                raise RuntimeError("no video bound")
            await asyncio.wait_for(receiver.track.recv(), max(deadline - time.monotonic(), 0.01))
            sample["first_frame_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            taps.tap_receiver(receiver, _drop)  # decoded: stop decoding, so the harness leaves the CPU to the rest
        sample["joined"] = True
    except Exception as exc:  # a failed join is a data point
        sample["error"] = f"{type(exc).__name__}: {exc}"[:200]
    sample["session"] = session
    return sample


async def _burst(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.viewers + 10, max_keepalive_connections=args.viewers + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout + 30, limits=limits) as http:
        publisher_session = None
        if not args.media:
            publisher_session = WhipSession(
                http, "whip", ROOM, mint(server.secret, server.port, ROOM, "publisher", "host"), tracks=[IdleVideo()]
            )
            await publisher_session.offer()
            await publisher_session.post()
            await publisher_session.wait_connected(30)
        tokens = [mint(server.secret, server.port, ROOM, f"viewer-{i}", "viewer") for i in range(args.viewers)]
        start_at = time.monotonic() + 2.0  # every offer is gathered before the clock starts
        cpu0, wall0 = None, None

        async def measure_from_start() -> None:
            nonlocal cpu0, wall0
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            cpu0, wall0 = proc_cpu_seconds(server.pid), time.monotonic()

        meter = asyncio.create_task(measure_from_start())
        harness0 = proc_cpu_seconds(os.getpid())
        samples = await asyncio.gather(*(_viewer(http, t, start_at, args.timeout, args.media) for t in tokens))
        await meter
        assert cpu0 is not None and wall0 is not None
        server_cpu_s = proc_cpu_seconds(server.pid) - cpu0
        wall_s = time.monotonic() - wall0
        harness_cpu_s = proc_cpu_seconds(os.getpid()) - harness0
        sessions = [s.pop("session") for s in samples]
        for session in sessions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), 10)
        if publisher_session is not None:
            await publisher_session.close()
    joined = [s for s in samples if s["joined"]]
    errors: dict[str, int] = {}
    for s in samples:
        if "error" in s:
            errors[s["error"]] = errors.get(s["error"], 0) + 1
    key = "first_frame_ms" if args.media else "connected_ms"
    return {
        "joined": len(joined),
        "viewers": args.viewers,
        "join_ms": summary([s.get(key) for s in joined]),
        "answer_ms": summary([s.get("answer_ms") for s in samples]),
        "connected_ms": summary([s.get("connected_ms") for s in samples]),
        "server_cpu_s": round(server_cpu_s, 3),
        "server_cpu_ms_per_join": round(server_cpu_s * 1000 / max(len(joined), 1), 2),
        "burst_wall_s": round(wall_s, 2),
        "harness_cpu_s": round(harness_cpu_s, 2),
        "errors": errors,
    }


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    loopback_only()
    os.environ["VITRINE_MAX_CONNECTIONS_PER_CLIENT"] = "0"  # every viewer comes from this one address
    if args.handshakes:
        os.environ["VITRINE_MAX_HANDSHAKES_PER_WORKER"] = str(args.handshakes)
    server = ServerProcess(max_rooms=10, source=Path(args.source) if args.source else None)
    server.start()
    publisher: Publisher | None = None
    try:
        with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
            http.post("/v1/rooms", json={"name": ROOM, "kind": "live", "max_participants": 10_000}).raise_for_status()
        if args.media:
            publisher = Publisher(server, ROOM, with_audio=False, max_lifetime_s=args.timeout + 120)
            publisher.start()
        result = await _burst(server, args)
    finally:
        if publisher is not None:
            publisher.stop()
        server.stop()
    return {
        "benchmark": "join_burst",
        "media": args.media,
        "handshakes": args.handshakes or "default",
        **result,
        "machine": machine_facts(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=150, help="WHEP viewers joining at once (default 150)")
    parser.add_argument("--timeout", type=float, default=30.0, help="a viewer not in by then has not joined (30 s)")
    parser.add_argument("--media", action=argparse.BooleanOptionalAction, default=True, help="a real publisher")
    parser.add_argument("--handshakes", type=int, default=0, help="the server's handshake bound (0: its default)")
    parser.add_argument("--source", help="serve this checkout's code instead (a before, e.g. from `git archive`)")
    parser.add_argument("--out", default="docs/bench/join-burst.json")
    args = parser.parse_args(argv)
    result = asyncio.run(benchmark(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    progress(
        f"{result['joined']}/{result['viewers']} joined, p50 {result['join_ms']['p50']} p95 {result['join_ms']['p95']}"
        f" ms, server {result['server_cpu_ms_per_join']} ms CPU per join ({result['server_cpu_s']} s over"
        f" {result['burst_wall_s']} s), harness {result['harness_cpu_s']} s, errors {result['errors']}"
    )
    progress(f"wrote {out}")


if __name__ == "__main__":
    main()
