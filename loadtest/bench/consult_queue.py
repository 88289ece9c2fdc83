"""Queue entry to the agents' consoles: how long until every console shows a new shopper.

K agent consoles log in (away, so the queue grows instead of ringing) and M shoppers enter one
after another, ``--interval-ms`` apart. For each shopper and each console, the latency is from
the shopper's ``enter`` leaving this process to that console receiving a ``queue`` push that lists
the shopper; both ends run in this process, so one clock measures it. The server is a
``vitrine serve`` child process, embedded (memory) or scaled (``--redis-url``). Its records are in
SQLite in the run's own data directory, or in PostgreSQL with ``--database-url``
(``postgresql+asyncpg://...``), which is migrated (``vitrine db upgrade``) before the server starts.

    python -m loadtest.bench.consult_queue --agents 5 --shoppers 100 --out docs/bench/consult-queue.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from loadtest.bench import API_KEY, ServerProcess, cdf_plot, machine_facts, progress, publish, summary
from vitrine.core.shops import WEEKDAYS

ALWAYS_OPEN = [{"day": day.value, "opens": "00:00", "closes": "24:00"} for day in WEEKDAYS]
ORIGIN = "https://bench.example"


class Console:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: dict[str, float] = {}  # shopper name -> when a queue push first listed them
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "queue":
                now = time.perf_counter()
                for entry in message["entries"]:
                    self.seen.setdefault(entry["context"].get("name", ""), now)


def _setup(server: ServerProcess, agents: int) -> list[str]:
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
        http.delete("/v1/shops/bench")  # a previous run on the same Redis database
        http.post(
            "/v1/shops",
            json={"id": "bench", "name": "Bench", "allowed_origins": [ORIGIN], "opening_hours": ALWAYS_OPEN},
        ).raise_for_status()
        tokens = []
        for i in range(agents):
            http.put(
                f"/v1/shops/bench/agents/agent-{i}", json={"display_name": f"A{i}", "languages": ["en"]}
            ).raise_for_status()
            tokens.append(http.post(f"/v1/shops/bench/agents/agent-{i}/token").json()["token"])
    return tokens


async def _run(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    base = server.url.replace("http", "ws", 1)
    consoles = []
    for token in _setup(server, args.agents):
        ws = await websockets.connect(base + "/v1/consult/agent", max_size=2**22)
        await ws.send(json.dumps({"type": "login", "token": token}))
        consoles.append(Console(ws))
    await asyncio.sleep(0.5)  # let the logins settle before the clock starts
    sent: dict[str, float] = {}
    shoppers = []
    cpu0 = server.cpu_seconds()
    for i in range(args.shoppers):
        name = f"shopper-{i}"
        ws = await websockets.connect(base + "/v1/consult/shopper", additional_headers={"Origin": ORIGIN})
        shoppers.append(ws)
        sent[name] = time.perf_counter()
        await ws.send(json.dumps({"type": "enter", "shop": "bench", "context": {"name": name}}))
        await asyncio.sleep(args.interval_ms / 1000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(len(c.seen) < min(args.shoppers, 50) for c in consoles):
        await asyncio.sleep(0.1)
    cpu_ms = (server.cpu_seconds() - cpu0) * 1000
    latencies = [
        (console.seen[name] - t0) * 1000 for name, t0 in sent.items() for console in consoles if name in console.seen
    ]
    # Consoles list the first 50 shoppers (QUEUE_VIEW_LIMIT); later ones are counted in `total` only.
    expected = sum(1 for i in range(args.shoppers) if i < 50) * len(consoles)
    for ws in shoppers + [c.ws for c in consoles]:
        await ws.close()
    return {
        "latency_ms": summary(latencies),
        "observed": len(latencies),
        "expected": expected,
        "server_cpu_ms_per_entry": round(cpu_ms / args.shoppers, 2),
        "samples_ms": sorted(round(v, 2) for v in latencies),
    }


def upgrade_database(url: str) -> None:
    """``vitrine db upgrade`` on ``url``: PostgreSQL must be at the code's revision before a server starts."""
    subprocess.run(
        [sys.executable, "-m", "vitrine.cli", "db", "upgrade"],
        check=True,
        timeout=120,
        env={**os.environ, "VITRINE_DATABASE_URL": url},
    )


def records_kind(database_url: str | None) -> str:
    return "postgresql" if database_url else "sqlite"


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if args.database_url:
        upgrade_database(args.database_url)
    server = ServerProcess(redis_url=args.redis_url, database_url=args.database_url)
    server.start()
    try:
        progress(
            f"{args.agents} consoles, {args.shoppers} shoppers every {args.interval_ms} ms "
            f"({'redis' if args.redis_url else 'memory'} coordination, "
            f"{records_kind(args.database_url)} records)"
        )
        result = await _run(server, args)
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)  # the run's own records (SQLite), evidence, recordings
    return {
        "benchmark": "consult_queue",
        "agents": args.agents,
        "shoppers": args.shoppers,
        "interval_ms": args.interval_ms,
        "state": "redis" if args.redis_url else "memory",
        "records": records_kind(args.database_url),
        **result,
        "machine": machine_facts(),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    cdf_plot(
        path,
        {"queue entry to console": result["samples_ms"]},
        target_ms=100,
        xlabel="ms from `enter` to a console listing the shopper",
        ylabel="fraction of (shopper, console) pairs",
        title=f"Queue entry to consoles: {result['agents']} consoles, {result['shoppers']} shoppers "
        f"every {result['interval_ms']:g} ms ({result['state']}, {result.get('records', 'no')} records)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--shoppers", type=int, default=50, help="at most 50 are listed on consoles")
    parser.add_argument("--interval-ms", type=float, default=100.0)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--database-url",
        default=None,
        help="records in PostgreSQL (postgresql+asyncpg://...), migrated first; default SQLite",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    publish(asyncio.run(benchmark(args)), args.out, plot, bulky=("samples_ms", "machine"))


if __name__ == "__main__":
    main()
