"""Live chat fan-out: how long a line takes to reach every viewer of a show.

A show goes live on a ``vitrine serve`` child process; V viewers join its room over /v1/rtc (as
the viewer page does, publishing nothing), spread over P client processes. S of them each say one
line a second, staggered, so the room carries S lines/s. Every line carries the sender's
``time.monotonic()`` (one clock for every process on a Linux machine), and every viewer records
when each line arrived: latency = arrival - send, over all (line, viewer) pairs.

The show's records are in SQLite in the run's own data directory, or in PostgreSQL with
``--database-url`` (``postgresql+asyncpg://...``, migrated with ``vitrine db upgrade`` before the
server starts). After the run the script counts the show's chat lines in its room log
(``durable``) and compares them with the lines sent: every line must be there.

    python -m loadtest.bench.chat_fanout --viewers 300 --rate 20 --seconds 30 --out docs/bench/chat-fanout.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets

from loadtest.bench import API_KEY, CpuMeter, ServerProcess, cdf_plot, machine_facts, progress, publish, summary
from vitrine.core.shops import WEEKDAYS
from vitrine.core.wire.live import show_room

ALWAYS_OPEN = [{"day": day.value, "opens": "00:00", "closes": "24:00"} for day in WEEKDAYS]


def _show(server: ServerProcess) -> tuple[str, str, str, str]:
    """A shop and a live show: (shop, show id, host console token, the show's room)."""
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret), timeout=30) as http:
        http.delete("/v1/shops/bench")
        http.post(
            "/v1/shops",
            json={
                "id": "bench",
                "name": "Bench",
                "allowed_origins": ["https://bench.example"],
                "opening_hours": ALWAYS_OPEN,
            },
        ).raise_for_status()
        show = http.post("/v1/shops/bench/shows", json={"title": "Bench show"}).json()
        console = http.post(f"/v1/shops/bench/shows/{show['id']}/console").json()["token"]
    httpx.post(
        server.url + "/v1/live/console/start", headers={"Authorization": f"Bearer {console}"}, timeout=30
    ).raise_for_status()
    return "bench", show["id"], console, show.get("room") or show_room(show["id"])


class Viewer:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.arrivals: list[tuple[str, float, float]] = []  # (line id, sent, arrived)
        self.reader = asyncio.create_task(self._read())
        self.pinger = asyncio.create_task(self._ping())

    async def _ping(self) -> None:
        """Like the viewer page: a silent viewer still pings, or the idle timeout would close it."""
        while True:
            await asyncio.sleep(10)
            await self.ws.send('{"type":"ping"}')

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            if raw.startswith('{"type":"log"'):
                entry = json.loads(raw)["entry"]
                if entry["kind"] == "chat":
                    line, sent = entry["text"].split(" ")
                    self.arrivals.append((line, float(sent), now))


async def _viewers(
    url: str,
    shop: str,
    show: str,
    count: int,
    senders: int,
    seconds: float,
    start_at: float,
    offset: int,
    total_senders: int,
) -> dict[str, Any]:
    viewers = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(count):
            token = (await http.get(f"/v1/live/{shop}/{show}/viewer")).json()["token"]
            ws = await websockets.connect(url.replace("http", "ws", 1) + "/v1/rtc", max_size=2**22)
            await ws.send(json.dumps({"type": "join", "token": token}))
            viewers.append(Viewer(ws))
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    sent: list[str] = []  # line ids

    async def speak(viewer: Viewer, index: int) -> None:
        await asyncio.sleep(index / total_senders)  # staggered: the room hears a steady stream
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            line = f"{offset + index}-{n}"
            await viewer.ws.send(json.dumps({"type": "chat", "text": f"{line} {time.monotonic():.6f}"}))
            sent.append(line)
            n += 1
            await asyncio.sleep(1.0)

    await asyncio.gather(*(speak(viewers[i], offset + i) for i in range(senders)))
    await asyncio.sleep(3.0)  # the last lines arrive
    for viewer in viewers:
        viewer.pinger.cancel()
        await viewer.ws.close()
    return {
        "sent": sent,
        "latencies_ms": [(arrived - sent_at) * 1000 for v in viewers for _, sent_at, arrived in v.arrivals],
    }


def _client_main(conn: Connection, *args: Any) -> None:
    conn.send(asyncio.run(_viewers(*args)))


def upgrade_database(url: str) -> None:
    """``vitrine db upgrade`` on ``url``: PostgreSQL must be at the code's revision before a server starts."""
    subprocess.run(
        [sys.executable, "-m", "vitrine.cli", "db", "upgrade"],
        check=True,
        timeout=120,
        env={**os.environ, "VITRINE_DATABASE_URL": url},
    )


def _logged_lines(server: ServerProcess, room: str | None) -> list[str] | None:
    """The line ids of the show's chat entries in its room log, read from the database the server wrote."""
    if room is None:
        return None
    if server.database_url:
        return asyncio.run(_logged_lines_pg(server.database_url, room))
    path = server.data_dir / "vitrine.db"
    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT doc FROM room_log WHERE room = ? AND kind = 'chat'", (room,)).fetchall()
    return [json.loads(doc)["text"].split(" ")[0] for (doc,) in rows]


async def _logged_lines_pg(url: str, room: str) -> list[str]:
    import sqlalchemy as sa

    from vitrine.core.records import tables as t
    from vitrine.core.records.database import open_database

    db = open_database(url)
    try:
        async with db.transaction() as conn:
            docs = await conn.scalars(
                sa.select(t.room_log.c.doc).where(t.room_log.c.room == room, t.room_log.c.kind == "chat")
            )
            return [doc["text"].split(" ")[0] for doc in docs]
    finally:
        await db.close()


def _durability(server: ServerProcess, room: str | None, sent: list[str]) -> dict[str, Any]:
    logged = _logged_lines(server, room)
    if logged is None:
        return {"room": room, "checked": False}
    missing = sorted(set(sent) - set(logged))
    return {
        "room": room,
        "checked": True,
        "records": "postgresql" if server.database_url else "sqlite",
        "lines_sent": len(sent),
        "lines_in_room_log": len(logged),
        "distinct_in_room_log": len(set(logged)),
        "missing": len(missing),
        "missing_examples": missing[:10],
        "every_line_durable": not missing,
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if args.database_url:
        upgrade_database(args.database_url)
    server = ServerProcess(redis_url=args.redis_url, database_url=args.database_url)
    server.start()
    room: str | None = None
    try:
        shop, show, _, room = _show(server)
        progress(f"{args.viewers} viewers in {args.processes} processes, {args.rate} lines/s for {args.seconds} s")
        start_at = time.monotonic() + 10 + args.viewers * 0.03  # every viewer joined before the first line
        per = args.viewers // args.processes
        children = []
        for p in range(args.processes):
            senders = args.rate // args.processes + (1 if p < args.rate % args.processes else 0)
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.Process(
                target=_client_main,
                args=(
                    child,
                    server.url,
                    shop,
                    show,
                    per,
                    senders,
                    args.seconds,
                    start_at,
                    p * (args.rate // args.processes + 1),
                    args.rate,
                ),
            )
            proc.start()
            children.append((proc, parent))
        time.sleep(max(0.0, start_at - time.monotonic()))
        meter = CpuMeter({"server": server.pid})
        results = [parent.recv() for _, parent in children]
        cpu = meter.read()
        for proc, _ in children:
            proc.join()
    finally:
        server.stop()
    try:
        # After the server stopped: what is in the database is what a restart would find.
        durable = _durability(server, room, [line for r in results for line in r["sent"]])
    finally:
        shutil.rmtree(server.data_dir, ignore_errors=True)  # the run's own records (SQLite), evidence, recordings
    latencies = [v for r in results for v in r["latencies_ms"]]
    sent = sum(len(r["sent"]) for r in results)
    return {
        "benchmark": "chat_fanout",
        "viewers": per * args.processes,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "state": "redis" if args.redis_url else "memory",
        "records": "postgresql" if args.database_url else "sqlite",
        "durable": durable,
        "lines_sent": sent,
        "deliveries": len(latencies),
        "expected_deliveries": sent * per * args.processes,
        "latency_ms": summary(latencies),
        "cpu": cpu,
        "samples_ms": sorted(round(v, 2) for v in latencies[:: max(1, len(latencies) // 5000)]),
        "machine": machine_facts(),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    cdf_plot(
        path,
        {"line to viewer": result["samples_ms"]},
        target_ms=100,
        xlabel="ms from a viewer sending a line to another viewer receiving it",
        ylabel="fraction of (line, viewer) deliveries",
        title=f"Live chat fan-out: {result['viewers']} viewers, {result['rate_per_s']} lines/s "
        f"({result['state']}, {result.get('records', 'no')} records)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--rate", type=int, default=20, help="lines per second in the room (one per sender)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=2, help="client processes the viewers are spread over")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--database-url",
        default=None,
        help="records in PostgreSQL (postgresql+asyncpg://...), migrated first; default SQLite",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    publish(benchmark(args), args.out, plot, bulky=("samples_ms", "machine"))


if __name__ == "__main__":
    main()
