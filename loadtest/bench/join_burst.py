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

``--peer janus`` runs the same burst against Janus 1.1's VideoRoom (``loadtest/janus.py``: Debian's ``janus``
in a network namespace of its own, since Janus never offers a loopback candidate), with the same aiortc client,
timeout rule, fields and CPU reading (the ``janus`` process). Its publisher is the same pattern in its own
process (``configure`` with an aiortc offer), or, with ``--no-media``, the same idle track from this process.
A Janus viewer's join is its whole exchange: a session, a handle, ``join`` (Janus's offer), our answer and
``start``, then ICE and DTLS; unlike a WHEP viewer, it cannot gather its candidates before the clock starts,
as it answers, and its media crosses a veth pair instead of loopback. ``--peer both`` runs Vitrine,
then Janus, in one invocation and writes both results, under ``vitrine`` and ``janus``, into one JSON file::

    python -m loadtest.bench.join_burst --viewers 150 --peer both --out docs/bench/join-burst-vs-janus.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiortc import MediaStreamTrack

from loadtest import janus
from loadtest.bench import (
    API_KEY,
    Publisher,
    ServerProcess,
    cdf_plot,
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
TARGET_MS = 600  # the join target (the product's sub-600 ms join)
JANUS_ROOM = 1717  # VideoRoom rooms are numbered
PEERS = ("vitrine", "janus")
Sample = dict[str, Any]


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


async def _janus_viewer(http: httpx.AsyncClient, feed: int, start_at: float, timeout: float, media: bool) -> Sample:
    """``_viewer`` against Janus: the same steps, clock and sample fields."""
    viewer = janus.JanusViewer(http, JANUS_ROOM, feed)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    sample: Sample = {"joined": False}
    try:
        await viewer.join(timeout)
        sample["answer_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        await viewer.wait_connected(max(deadline - time.monotonic(), 0.01))
        sample["connected_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if media:
            await viewer.video_frame(max(deadline - time.monotonic(), 0.01))
            sample["first_frame_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            taps.tap_receiver(viewer.received("video"), _drop)  # as _viewer: stop decoding once one frame is in
        sample["joined"] = True
    except Exception as exc:  # a failed join is a data point
        sample["error"] = f"{type(exc).__name__}: {exc}"[:200]
    sample["session"] = viewer
    return sample


async def _measure(
    cpu_seconds: Callable[[], float], viewers: Callable[[float], list[Awaitable[Sample]]], args: argparse.Namespace
) -> dict[str, Any]:
    """Start ``viewers(start_at)`` together, read the server's CPU over the burst, close them, sum up."""
    start_at = time.monotonic() + 2.0  # every viewer is set up (a WHEP offer gathered) before the clock starts
    cpu0, wall0 = None, None

    async def measure_from_start() -> None:
        nonlocal cpu0, wall0
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu0, wall0 = cpu_seconds(), time.monotonic()

    meter = asyncio.create_task(measure_from_start())
    harness0 = proc_cpu_seconds(os.getpid())
    samples = await asyncio.gather(*viewers(start_at))
    await meter
    assert cpu0 is not None and wall0 is not None
    server_cpu_s = cpu_seconds() - cpu0
    wall_s = time.monotonic() - wall0
    harness_cpu_s = proc_cpu_seconds(os.getpid()) - harness0
    sessions = [s.pop("session") for s in samples]
    for session in sessions:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.close(), 10)
    return _summarize(samples, args, server_cpu_s, wall_s, harness_cpu_s)


@contextlib.asynccontextmanager
async def _own_clients(url: str, args: argparse.Namespace) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per viewer, as each browser or player has its own: one client shared by hundreds of
    viewers costs the harness more with every connection it holds (httpcore scans its whole pool on each request
    and each response), and a Janus viewer holds two (its requests and its event long poll)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=args.timeout + 30))
            for _ in range(args.viewers)
        ]


async def _burst(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout + 30) as http:
        publisher_session = None
        if not args.media:
            publisher_session = WhipSession(
                http, "whip", ROOM, mint(server.secret, server.port, ROOM, "publisher", "host"), tracks=[IdleVideo()]
            )
            await publisher_session.offer()
            await publisher_session.post()
            await publisher_session.wait_connected(30)
        tokens = [mint(server.secret, server.port, ROOM, f"viewer-{i}", "viewer") for i in range(args.viewers)]

        async with _own_clients(server.url, args) as clients:

            def viewers(start_at: float) -> list[Awaitable[Sample]]:
                return [_viewer(c, t, start_at, args.timeout, args.media) for c, t in zip(clients, tokens, strict=True)]

            result = await _measure(server.cpu_seconds, viewers, args)
        if publisher_session is not None:
            await publisher_session.close()
    return result


async def _janus_burst(server: janus.JanusServer, feed: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """``_burst`` against Janus: ``feed`` is the media publisher's, or None for an idle one published here."""
    async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout + 30) as http:
        idle_publisher = None
        if feed is None:
            idle_publisher = janus.JanusPublisher(http, JANUS_ROOM, [IdleVideo()])
            await idle_publisher.publish(timeout=30)
            feed = idle_publisher.feed
            assert feed is not None
        joined_feed = feed

        async with _own_clients(server.url, args) as clients:

            def viewers(start_at: float) -> list[Awaitable[Sample]]:
                return [_janus_viewer(c, joined_feed, start_at, args.timeout, args.media) for c in clients]

            result = await _measure(server.cpu_seconds, viewers, args)
        if idle_publisher is not None:
            await idle_publisher.close()
    return result


def _summarize(
    samples: list[Sample], args: argparse.Namespace, server_cpu_s: float, wall_s: float, harness_cpu_s: float
) -> dict[str, Any]:
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
        "join_ms_each": sorted(round(s[key], 1) for s in joined if s.get(key) is not None),  # for the plot
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
    return {"peer": "vitrine", "handshakes": args.handshakes or "default", **result}


async def janus_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """The same burst against Janus's VideoRoom; its peers gather on the host end of Janus's veth pair."""
    server = janus.JanusServer()
    server.start()
    publisher: janus.JanusPublisherProcess | None = None
    try:
        taps.configure_host_candidates([server.client_ip])
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await janus.create_room(http, JANUS_ROOM)
        feed = None
        if args.media:
            publisher = janus.JanusPublisherProcess(server, JANUS_ROOM, max_lifetime_s=args.timeout + 120)
            feed = publisher.start()
        result = await _janus_burst(server, feed, args)
        errors = server.log_errors()
    finally:
        if publisher is not None:
            publisher.stop()
        server.stop()
        loopback_only()
    return {"peer": "janus", **result, "janus_log_errors": errors}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """One peer's result with the run's facts beside it, or, for ``both``, each peer's under its name."""
    head = {"benchmark": "join_burst", "media": args.media}
    if args.peer == "vitrine":
        return {**head, **await benchmark(args), "machine": machine_facts()}
    if args.peer == "janus":
        return {**head, **await janus_benchmark(args), "machine": machine_facts()}
    machine = machine_facts()  # before the runs: the load average they start on
    vitrine_result = await benchmark(args)
    return {**head, "peer": "both", "vitrine": vitrine_result, "janus": await janus_benchmark(args), "machine": machine}


def plot(result: dict[str, Any], path: Path) -> None:
    """Each peer's joins as a CDF of the time to its first frame (or connection), beside the JSON."""
    runs = {peer: one for peer in PEERS if (one := result.get(peer, result if result["peer"] == peer else None))}
    viewers = max(one["viewers"] for one in runs.values())
    cdf_plot(
        path,
        {f"{peer}: {one['joined']}/{one['viewers']} joined": one["join_ms_each"] for peer, one in runs.items()},
        target_ms=TARGET_MS,
        xlabel="ms from the burst's start to the viewer's " + ("first frame" if result["media"] else "connection"),
        ylabel="fraction of viewers",
        title=f"{viewers} WHEP viewers at once (loadtest.bench.join_burst)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=150, help="WHEP viewers joining at once (default 150)")
    parser.add_argument("--timeout", type=float, default=30.0, help="a viewer not in by then has not joined (30 s)")
    parser.add_argument("--media", action=argparse.BooleanOptionalAction, default=True, help="a real publisher")
    parser.add_argument("--handshakes", type=int, default=0, help="the server's handshake bound (0: its default)")
    parser.add_argument("--source", help="serve this checkout's code instead (a before, e.g. from `git archive`)")
    parser.add_argument(
        "--peer", choices=[*PEERS, "both"], default="vitrine", help="the server (both: one, then the other)"
    )
    parser.add_argument("--out", default="docs/bench/join-burst.json")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))
    for peer in PEERS:
        one = result.get(peer, result if result["peer"] == peer else None)
        if one is not None:
            progress(
                f"{peer}: {one['joined']}/{one['viewers']} joined, p50 {one['join_ms']['p50']} p95"
                f" {one['join_ms']['p95']} ms, server {one['server_cpu_ms_per_join']} ms CPU per join"
                f" ({one['server_cpu_s']} s over {one['burst_wall_s']} s), harness {one['harness_cpu_s']} s,"
                f" errors {one['errors']}"
            )
    progress(f"wrote {out}")


if __name__ == "__main__":
    main()
