"""Inspection: a full-resolution photo over the evidence data channel while the buyer's video keeps running.

One ``vitrine serve`` process. An aiortc buyer (this process) goes through the real case flow (link,
consent, knock) and publishes the harness's pre-encoded 640x480 VP8 at 30 fps; an aiortc inspector
(a child process, as the seller's console is another machine) admits it and decodes the buyer's video.
Every datagram of the buyer's connection, both ways, goes through ``loadtest.impair`` (``--loss``
percent, random), so the photo's SCTP and the video share one lossy link, as on a phone far away.

Each round sends a 12-megapixel JPEG (4000x3000, made here with PyAV) as the buyer's page does: a
header, then 64 KiB chunks paced by ``bufferedAmount``, until the worker answers ``stored``. Measured:
the transfer time (header sent to ``stored`` received), the inspector's decoded frame rate in
one-second windows while each transfer runs, and the longest wait between two decoded frames.

    python -m loadtest.bench.inspect_photo --loss 0,5,10 --photos 10 --out docs/bench/inspect-photo.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypedDict

import av
import httpx
import numpy as np

from loadtest.bench import API_KEY, ServerProcess, machine_facts, progress, publish, summary
from loadtest.client import VitrineClient
from loadtest.impair import Impairment, LinkImpairment
from loadtest.source import PreEncodedVideoTrack

CHUNK = 64 * 1024
LOW_WATER = 256 * 1024  # like the page: keep at most this much queued, so the video is not starved
TIMEOUT_S = 120.0


def make_photo(width: int = 4000, height: int = 3000, quality: int = 2) -> bytes:
    """A photo-like 12-megapixel JPEG: smooth gradients with sensor-like noise (a few MB, as phones make)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(7)
    image = np.stack(
        [128 + 90 * np.sin(x / 300), 128 + 90 * np.cos(y / 240), 128 + 60 * np.sin((x + y) / 500)], axis=-1
    )
    image += rng.normal(0, 14, image.shape)
    frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.options = {"q:v": str(quality)}  # mjpeg's quantizer: 2 (best) to 31
    codec.qmin = codec.qmax = quality
    return b"".join(bytes(p) for p in [*codec.encode(frame.reformat(format="yuvj420p")), *codec.encode(None)])


async def _case(backend: httpx.AsyncClient) -> tuple[str, str]:
    """A case opened, its link redeemed and consented: the buyer's and the inspector's join tokens."""
    opened = (await backend.post("/v1/shops/bench/cases", json={"order_ref": "B-1", "claim": "bench"})).json()
    link = opened["link"].split("#t=", 1)[1]
    console = (await backend.post(f"/v1/shops/bench/cases/{opened['case']['id']}/console")).json()["token"]
    async with httpx.AsyncClient(base_url=str(backend.base_url)) as http:  # the phone and the console: no API key
        session = (await http.post("/v1/inspect/redeem", json={"token": link})).json()["token"]
        bearer = {"Authorization": f"Bearer {session}"}
        version = (await http.get("/v1/inspect/session", headers=bearer)).json()["consent_version"]
        (await http.post("/v1/inspect/session/consent", json={"version": version}, headers=bearer)).raise_for_status()
        buyer = (await http.post("/v1/inspect/session/join", headers=bearer)).json()["token"]
        inspector = (await http.get("/v1/inspect/console", headers={"Authorization": f"Bearer {console}"})).json()
    return buyer, inspector["join_token"]


def inspector_main(url: str, token: str, conn: Connection) -> None:
    """The inspector, in its own process: admit the first knock, decode the buyer's video, and answer
    ``times`` with the monotonic time of every decoded frame (the clock is the machine's, shared)."""
    asyncio.run(_inspector(url, token, conn))


async def _inspector(url: str, token: str, conn: Connection) -> None:
    client = VitrineClient(url, token)
    await client.connect(TIMEOUT_S)
    knock = await asyncio.wait_for(client.knocks.get(), TIMEOUT_S)
    await client.send({"type": "admit", "knock": knock["id"]})
    remote = await client.next_remote_track("video", timeout=TIMEOUT_S)
    times: list[float] = []

    async def decode() -> None:
        while True:
            await remote.track.recv()
            times.append(time.monotonic())

    decoding = asyncio.create_task(decode())
    conn.send("watching")
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, conn.recv) == "times":
        conn.send(list(times))
    decoding.cancel()
    await client.close()


def longest_gap_ms(times: list[float], start: float, end: float) -> float:
    """The longest wait between two decoded frames around [start, end]: a stall shows here even inside a window."""
    inside = [t for t in times if start - 0.1 <= t <= end + 0.1]
    return max((b - a for a, b in zip(inside, inside[1:])), default=float("nan")) * 1000


class Transfer(TypedDict):
    """One photo's transfer: how long it took, the decoded frames in each second of it, the longest stall."""

    seconds: float
    fps_windows: list[int]
    longest_gap_ms: float


def windows(times: list[float], start: float, end: float) -> list[int]:
    """Decoded frames in each whole second of [start, end] (at least one window)."""
    return [sum(1 for t in times if start + i <= t < start + i + 1) for i in range(max(1, int(end - start)))]


async def _send_photo(channel: Any, replies: asyncio.Queue[dict[str, Any]], photo: bytes, request: str) -> float:
    started = time.monotonic()
    channel.send(
        json.dumps(
            {
                "type": "photo",
                "request": request,
                "content_type": "image/jpeg",
                "bytes": len(photo),
                "width": 4000,
                "height": 3000,
                "method": "takePhoto",
            }
        )
    )
    low = asyncio.Event()
    channel.on("bufferedamountlow", low.set)
    channel.bufferedAmountLowThreshold = LOW_WATER
    for offset in range(0, len(photo), CHUNK):
        if channel.bufferedAmount > LOW_WATER:
            low.clear()
            await asyncio.wait_for(low.wait(), TIMEOUT_S)
        channel.send(photo[offset : offset + CHUNK])
    reply = await asyncio.wait_for(replies.get(), TIMEOUT_S)
    if reply.get("type") != "stored":
        raise RuntimeError(f"the worker refused the photo: {reply}")
    return time.monotonic() - started


async def _round(url: str, http: httpx.AsyncClient, loss: float, photos: int, photo: bytes, seed: int) -> dict:
    buyer_token, inspector_token = await _case(http)
    conn, child_conn = multiprocessing.Pipe()
    inspector = multiprocessing.get_context("spawn").Process(
        target=inspector_main, args=(url, inspector_token, child_conn), daemon=True
    )
    inspector.start()
    loop = asyncio.get_running_loop()
    impairment = LinkImpairment(down=Impairment(loss=loss), up=Impairment(loss=loss), seed=seed)
    video = PreEncodedVideoTrack(
        find_sender=lambda track: next((s for s in buyer.pc.getSenders() if s.track is track), None)
    )
    buyer = VitrineClient(url, buyer_token, tracks=[video], datagram_hook=impairment)
    channel_ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @buyer.pc.on("datachannel")
    def _on_channel(channel: Any) -> None:
        channel.on("message", lambda raw: replies.put_nowait(json.loads(raw)) if isinstance(raw, str) else None)
        if not channel_ready.done():
            channel_ready.set_result(channel)

    try:
        await buyer.connect(TIMEOUT_S)  # knocks; the inspector admits it
        channel = await asyncio.wait_for(channel_ready, TIMEOUT_S)
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            await asyncio.wait_for(opened.wait(), TIMEOUT_S)
        if await loop.run_in_executor(None, conn.poll, TIMEOUT_S):
            conn.recv()  # watching
        await asyncio.sleep(3.0)  # warm-up: the first keyframe, the jitter buffer settling
        spans = []
        for index in range(photos):
            start = time.monotonic()
            seconds = await _send_photo(channel, replies, photo, f"bench-{index}")
            spans.append((start, seconds))
            progress(f"loss {loss:.0%}: photo {index + 1}/{photos} in {seconds:.2f} s")
            await asyncio.sleep(2.0)
        conn.send("times")
        times = await loop.run_in_executor(None, conn.recv)
    finally:
        conn.send("stop")
        await buyer.close()
        inspector.join(15)
        if inspector.is_alive():
            inspector.kill()
    transfers = [
        Transfer(
            seconds=seconds,
            fps_windows=windows(times, start, start + seconds),
            longest_gap_ms=longest_gap_ms(times, start, start + seconds),
        )
        for start, seconds in spans
    ]
    first = spans[0][0]
    baseline = windows(times, first - 3.0, first)
    all_windows = [w for t in transfers for w in t["fps_windows"]]
    counters = impairment.counters
    return {
        "loss": loss,
        "photo_bytes": len(photo),
        "transfer_s": summary([t["seconds"] for t in transfers]),
        "throughput_mbit_s": summary([len(photo) * 8 / t["seconds"] / 1e6 for t in transfers]),
        "fps_during_transfer": {"min": min(all_windows), **summary(all_windows)},
        "fps_before": baseline,
        "longest_gap_ms": summary([t["longest_gap_ms"] for t in transfers]),
        "measured_loss": {d: round(c.loss, 4) for d, c in counters.items()},
        "samples": transfers,
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run in result["runs"]:
        label = f"{run['loss']:.0%} loss"
        left.plot(range(1, len(run["samples"]) + 1), [s["seconds"] for s in run["samples"]], "o-", label=label)
        right.plot([w for s in run["samples"] for w in s["fps_windows"]], ".-", label=label)
    left.set(xlabel="photo", ylabel="transfer time (s)", title=f"{result['photo_mb']:.1f} MB, 12 MP JPEG")
    right.axhline(25, color="red", linestyle="--", label="target 25 fps")
    right.set(
        xlabel="one-second window during transfers",
        ylabel="inspector's decoded fps",
        ylim=(0, 35),
        title="buyer's video while photos transfer",
    )
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    photo = make_photo()
    server = ServerProcess()
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, auth=(API_KEY, server.secret), timeout=30) as http:
            (await http.post("/v1/shops", json={"id": "bench", "name": "Bench"})).raise_for_status()
            runs = [
                await _round(server.url, http, loss / 100, args.photos, photo, seed=index)
                for index, loss in enumerate(args.loss)
            ]
    finally:
        server.stop()
    return {
        "benchmark": "inspect_photo",
        "photo_mb": len(photo) / 1e6,
        "photos_per_run": args.photos,
        "runs": runs,
        "machine": machine_facts(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--loss",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.0, 5.0],
        help="percent loss on the buyer's link, both ways; comma-separated for several runs",
    )
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    publish(asyncio.run(_main(args)), args.out, _plot)


if __name__ == "__main__":
    main()
