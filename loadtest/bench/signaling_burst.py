"""Signaling and worker cost of a join burst, without media: N WebSocket joins at once, to the offer.

Each client opens the WebSocket, sends ``join`` publishing audio and video, and
waits for ``joined`` and the server's first offer; it never answers, so no ICE,
DTLS or RTP runs. What is left is what every join costs the server before media:
token check, admission, placement, a peer connection with its transceivers, and
the offer. Rooms are consult pairs. The server's CPU for the whole burst is read
from /proc.

    python -m loadtest.bench.signaling_burst --clients 100 --rounds 3 --out docs/bench/signaling-burst.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from loadtest.bench import API_KEY, ServerProcess, machine_facts, mint, progress, summary

PUBLISH = [{"kind": "audio", "source": "microphone"}, {"kind": "video", "source": "camera"}]


async def _join(url: str, token: str) -> dict[str, float]:
    t0 = time.perf_counter()
    async with websockets.connect(url, max_size=2**20) as ws:
        opened = time.perf_counter()
        await ws.send(json.dumps({"type": "join", "token": token, "publish": PUBLISH}))
        joined = None
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message["type"] == "error":
                raise RuntimeError(f"join refused: {message['code']}")
            if message["type"] == "joined":
                joined = time.perf_counter()
            elif message["type"] == "offer" and joined is not None:
                offer = time.perf_counter()
                return {"ws_open": (opened - t0) * 1000, "joined": (joined - t0) * 1000, "offer": (offer - t0) * 1000}


async def _round(server: ServerProcess, clients: int, index: int) -> dict[str, Any]:
    rooms = [f"burst-{index}-{i}" for i in range(clients // 2)]
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
        for room in rooms:
            http.post("/v1/rooms", json={"name": room, "kind": "consult"}).raise_for_status()
    tokens = [
        mint(server.secret, server.port, rooms[i // 2], f"client-{index}-{i}", "agent" if i % 2 else "customer")
        for i in range(clients)
    ]
    url = server.url.replace("http", "ws", 1) + "/v1/rtc"
    cpu0 = server.cpu_seconds()
    results = await asyncio.gather(*(_join(url, token) for token in tokens))
    server_cpu_ms = (server.cpu_seconds() - cpu0) * 1000
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
        for room in rooms:
            http.delete(f"/v1/rooms/{room}")
    return {
        "stages_ms": {stage: summary([r[stage] for r in results]) for stage in ("ws_open", "joined", "offer")},
        "server_cpu_ms": round(server_cpu_ms, 1),
        "server_cpu_ms_per_join": round(server_cpu_ms / clients, 2),
    }


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess(max_rooms=args.clients)
    server.start()
    try:
        rounds = [await _round(server, args.clients, i) for i in range(args.rounds)]
    finally:
        server.stop()
    offers = sorted(r["stages_ms"]["offer"]["p95"] for r in rounds)
    return {
        "benchmark": "signaling_burst",
        "clients": args.clients,
        "rounds": rounds,
        "offer_p95_ms_median_of_rounds": offers[len(offers) // 2],
        "server_cpu_ms_per_join_median": sorted(r["server_cpu_ms_per_join"] for r in rounds)[len(rounds) // 2],
        "machine": machine_facts(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="joins per burst, in consult pairs (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, each on fresh rooms (default 3)")
    parser.add_argument("--out", default="docs/bench/signaling-burst.json")
    args = parser.parse_args(argv)
    result = asyncio.run(benchmark(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for i, r in enumerate(result["rounds"]):
        progress(
            f"round {i}: offer p50 {r['stages_ms']['offer']['p50']} p95 {r['stages_ms']['offer']['p95']} ms, "
            f"server {r['server_cpu_ms_per_join']} ms CPU per join"
        )
    progress(f"wrote {out}")


if __name__ == "__main__":
    main()
