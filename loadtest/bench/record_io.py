"""Records I/O: the database round trips of one consult call, and how fast records are written.

(a) **Round trips of one consult call, ring to final record.** The real app (signaling with its media worker in
this process: ``vitrine.embedded.create_app``, or the factory ``main`` is given) serves on a free
127.0.0.1 port inside this process, as the tests' ``embedded_server`` runs it (``loadtest.inprocess.serve_app``), and
SQLAlchemy event listeners on its records engine count every statement the driver executes
(``before_cursor_execute``: SELECT, INSERT, UPDATE, DELETE, and SQLite's own ``BEGIN IMMEDIATE``) and every
transaction (``commit``, ``rollback``), tagged with the phase the call is in and with the asyncio task
that ran it: a desk socket's handler (the call's own work), the desk's sweeper (a clock, every
``consult_sweep_s``, whether or not a call is on) or a webhook delivery loop. The shop, its agent and
products, and the agent's console login, are set up first and not counted. Then, over the real desk
WebSockets (no media): the shopper enters (ticket, queue push), the agent's console rings (the
routing the entry runs, told apart by wrapping ``ConsultDesk._dispatch``), the agent accepts, a chat line
each way, a product shown, the agent ends the call, the shopper rates it, the agent files the wrap-up.
A phase ends once its answers arrived and no call statement ran for ``QUIET_S``. It runs once
without a webhook and once with the shop's ``webhook_url`` on a local receiver (each event is an
outbox row, then a delivery). On SQLite, and on PostgreSQL with ``--database-url``. The same counters
then follow three chat lines of a viewer in a live show, each from ``chat`` to its echo.

(b) **Write throughput.** ``vitrine.core.records.open_records`` on a fresh SQLite file (WAL,
``synchronous=FULL``): N room-log appends one at a time, then with 16 concurrent writers (in one
room: a show's chat, and in 16 rooms), then N ``save_call``. Each write is one transaction and returns
committed; its latency is the caller's wait (what an acknowledgement waits for), and ``commit`` is
the part after its last statement returned (the COMMIT and, on SQLite, the WAL fsync). The same on
PostgreSQL with ``--database-url``.

    python -m loadtest.bench.record_io --out docs/bench/records-io.json
    python -m loadtest.bench.record_io --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        --out docs/bench/records-io.json

``--database-url`` must name a database this script may write to; it is migrated here
(``vitrine.core.records.migrate.upgrade``) if it is not yet.

``--compare`` draws the p50 and p95 of consult_queue and chat_fanout results side by side instead,
one bar pair per configuration (before the records moved: memory or Redis; after: the records
database, with memory or Redis coordination):

    python -m loadtest.bench.record_io --compare docs/bench/records-*queue*.json docs/bench/records-*chat*.json \\
        --plot docs/bench/records-latency.png
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from loadtest.bench import machine_facts, percentile, progress, summary
from loadtest.desk import ALWAYS_OPEN, enter_shopper, login_agent, make_shop
from loadtest.inprocess import AppFactory, RunningServer, serve_app
from loadtest.webhook_receiver import serve_receiver
from vitrine.embedded import create_app

QUIET_S = 0.4  # a phase is over when no statement of the call ran for this long
KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN")
PHASES = (  # (key, what the table calls it)
    ("enter", "shopper enters the queue (ticket, queue push to consoles)"),
    ("ring", "the agent's console rings (routing, run by the entry)"),
    ("accept", "agent accepts"),
    ("chat_shopper", "chat line, shopper to agent"),
    ("chat_agent", "chat line, agent to shopper"),
    ("product", "agent shows a product"),
    ("end", "agent ends the call"),
    ("rate", "shopper rates the call"),
    ("wrap_up", "agent files the wrap-up"),
)


# -- (a) round trips ---------------------------------------------------------------------------------


def statement_kind(statement: str) -> str:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return word if word in KINDS else "other"


async def serve(stack: contextlib.AsyncExitStack, database_url: str | None, app_factory: AppFactory) -> RunningServer:
    """The real app on a free 127.0.0.1 port in this event loop (``loadtest.inprocess.serve_app``), with data,
    evidence and recordings folders that go with ``stack``."""
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vitrine-record-io-")))
    folders = {name: str(root / name) for name in ("data_dir", "evidence_dir", "recordings_dir")}
    return await stack.enter_async_context(
        serve_app(app_factory, **folders, **({"database_url": database_url} if database_url else {}))
    )


def task_origin() -> str:
    """Who runs the statement: a socket's handler (``request``), or which background loop."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "no task"
    if task is None:
        return "no task"
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", "") or task.get_name()
    if "run_asgi" in name:
        return "request"
    if name == "benchmark":
        return "this script"  # its own reads: is the outbox drained, the final record
    return name


class StatementCounter:
    """Counts the statements and transactions on one engine, by phase, kind and origin."""

    def __init__(self, sync_engine: Any) -> None:
        self.engine = sync_engine
        self.phase = "setup"
        self.in_dispatch = False
        self.statements: Counter[tuple[str, str, str]] = Counter()  # (phase, origin, kind)
        self.transactions: Counter[tuple[str, str, str]] = Counter()  # (phase, origin, "commit"/"rollback")
        self.checkouts: Counter[tuple[str, str]] = Counter()  # (phase, origin): PostgreSQL pings on each
        self.last_call_statement = time.monotonic()
        self.examples: dict[tuple[str, str], list[str]] = {}  # (phase, kind) -> a few statement texts
        event.listen(sync_engine, "before_cursor_execute", self._statement)
        event.listen(sync_engine, "commit", self._commit)
        event.listen(sync_engine, "rollback", self._rollback)
        event.listen(sync_engine.pool, "checkout", self._checkout)

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine.pool, "checkout", self._checkout)

    def _phase(self) -> str:
        return "ring" if self.phase == "enter" and self.in_dispatch else self.phase

    def _note(self, origin: str) -> None:
        if origin != "ConsultDesk._sweep_forever":
            self.last_call_statement = time.monotonic()

    def _statement(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        origin, kind, phase = task_origin(), statement_kind(statement), self._phase()
        self.statements[phase, origin, kind] += 1
        if origin == "request":
            examples = self.examples.setdefault((phase, kind), [])
            text = " ".join(statement.split())[:160]
            if text not in examples and len(examples) < 6:
                examples.append(text)
        self._note(origin)

    def _commit(self, conn: Any) -> None:
        origin = task_origin()
        self.transactions[self._phase(), origin, "commit"] += 1
        self._note(origin)

    def _rollback(self, conn: Any) -> None:
        origin = task_origin()
        self.transactions[self._phase(), origin, "rollback"] += 1
        self._note(origin)

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        self.checkouts[self._phase(), task_origin()] += 1

    async def quiet(self, seconds: float = QUIET_S, timeout: float = 10.0) -> None:
        """Wait until no statement of the call (the sweeper's excepted) ran for ``seconds``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle = time.monotonic() - self.last_call_statement
            if idle >= seconds:
                return
            await asyncio.sleep(seconds - idle)

    def table(self, measured: tuple[tuple[str, str], ...] = PHASES) -> dict[str, Any]:
        phases: dict[str, Any] = {}
        for key, label in (("setup", "setup (not counted)"), *measured, ("after", "afterwards (idle)")):
            by_origin: dict[str, Any] = {}
            origins = {o for (p, o, _) in self.statements if p == key} | {
                o for (p, o, _) in self.transactions if p == key
            }
            for origin in sorted(origins):
                kinds = {
                    kind: self.statements[key, origin, kind]
                    for kind in (*KINDS, "other")
                    if self.statements[key, origin, kind]
                }
                by_origin[origin] = {
                    "statements": sum(kinds.values()),
                    "by_kind": kinds,
                    "commits": self.transactions[key, origin, "commit"],
                    "rollbacks": self.transactions[key, origin, "rollback"],
                    "checkouts": self.checkouts[key, origin],
                }
            phases[key] = {
                "label": label,
                "by_origin": by_origin,
                "examples": {
                    kind: self.examples.get((key, kind), []) for kind in KINDS if self.examples.get((key, kind))
                },
            }
        return phases


def call_totals(
    phases: dict[str, Any], origins: tuple[str, ...], postgresql: bool, keys: tuple[str, ...] | list[str] | None = None
) -> dict[str, Any]:
    """Statements and transactions of the call's phases (not setup, not idle), from ``origins``."""
    total: Counter[str] = Counter()
    for key in keys or tuple(k for k, _ in PHASES):
        for origin, counts in phases[key]["by_origin"].items():
            if origin in origins:
                total["statements"] += counts["statements"]
                total["commits"] += counts["commits"]
                total["rollbacks"] += counts["rollbacks"]
                total["checkouts"] += counts["checkouts"]
                for kind, n in counts["by_kind"].items():
                    total[kind] += n
    out: dict[str, Any] = dict(total)
    out["statements_without_begin"] = total["statements"] - total["BEGIN"]
    if postgresql:
        # On asyncpg each transaction is BEGIN, its statements, COMMIT; and pool_pre_ping's ping at each
        # checkout is BEGIN, an empty query, ROLLBACK (seen with log_statement=all). Prepares of a
        # statement's first use on a connection (then cached) are left out.
        out["network_round_trips_estimate"] = (
            out["statements_without_begin"] + 2 * (total["commits"] + total["rollbacks"]) + 3 * total["checkouts"]
        )
    return out


async def _wait_outbox_empty(runtime: Any, shop: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shop not in await runtime.state.records.outbox.pending_shops():
            return
        await asyncio.sleep(0.05)


async def one_call(database_url: str | None, webhooks: bool, app_factory: AppFactory) -> dict[str, Any]:
    shop = "rt-" + secrets.token_hex(4)
    async with contextlib.AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(serve_receiver()) if webhooks else None
        server = await serve(stack, database_url, app_factory)
        runtime = server.runtime
        assert runtime is not None
        counter = StatementCounter(runtime.state.records.db.engine.sync_engine)
        desk = runtime.consult.desk
        dispatch = desk._dispatch

        async def counted_dispatch(*args: Any, **kwargs: Any) -> Any:  # tells the ring apart from the entry
            counter.in_dispatch = True
            try:
                return await dispatch(*args, **kwargs)
            finally:
                counter.in_dispatch = False

        # Instrumentation: the desk's routing, wrapped for the length of the call, then put back.
        desk._dispatch = counted_dispatch  # type: ignore[method-assign]  # wrapped on purpose (see above)
        webhook: dict[str, Any] = {"webhook_url": receiver.url} if receiver else {}
        try:
            await make_shop(server, shop, agents={"ann": ["en"]}, **webhook)
            console = await login_agent(server, shop, "ann")
            await counter.quiet()

            counter.phase = "enter"  # ... and "ring", inside it
            shopper = await enter_shopper(server, shop, name="Zoe", sku="mug-1")
            ticket = (await shopper.expect("ticket"))["ticket"]
            await console.expect("ring")
            await console.expect("queue", lambda m: m["total"] == 1)
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "accept"
            await console.send({"type": "accept", "ticket": ticket})
            await console.expect("call_started")
            await shopper.expect("call_started")
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "chat_shopper"
            await shopper.send({"type": "chat", "text": "Is it dishwasher safe?"})
            await console.expect("chat", lambda m: m["line"]["text"] == "Is it dishwasher safe?")
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "chat_agent"
            await console.send({"type": "chat", "text": "Yes!"})
            await shopper.expect("chat", lambda m: m["line"]["text"] == "Yes!")
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "product"
            await console.send({"type": "show_product", "sku": "lamp-2"})
            await shopper.expect("product")
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "end"
            mark = console.mark()
            await console.send({"type": "end_call"})
            await shopper.expect("call_ended")
            await console.expect("status", lambda m: m["status"] == "wrap_up", after=mark)
            await console.expect("history", after=mark)
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "rate"
            mark = console.mark()
            await shopper.send({"type": "rate", "stars": 5, "comment": "Great"})
            await shopper.expect("rated")
            await console.expect("history", after=mark)
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "wrap_up"
            mark = console.mark()
            await console.send({"type": "wrap_up", "ticket": ticket, "notes": "follow up Friday"})
            await console.expect("status", lambda m: m["status"] == "available", after=mark)
            await console.expect("history", after=mark)
            await _settle(counter, runtime, shop, receiver)

            counter.phase = "after"  # idle: what the background loops do on their own
            idle_t0 = time.monotonic()
            await asyncio.sleep(2.0)
            idle_s = time.monotonic() - idle_t0
            record = await runtime.records.consult.call(shop, ticket)
            counter.phase = "teardown"
            for client in (shopper, console):
                await client.close()
        finally:
            desk._dispatch = dispatch  # type: ignore[method-assign]  # the original, put back
            counter.remove()
    assert record is not None and record.rating == 5 and record.wrap_up == "follow up Friday"
    assert [line.text for line in record.chat] == ["Is it dishwasher safe?", "Yes!"]
    phases = counter.table()
    pg = database_url is not None
    per_phase = {key: call_totals(phases, ("request",), pg, (key,)) for key, _ in PHASES}
    if webhooks:
        for key, _ in PHASES:
            per_phase[key]["delivery"] = call_totals(phases, ("WebhookDispatcher._drain",), pg, (key,))
    idle = call_totals(phases, ("ConsultDesk._sweep_forever", "WebhookDispatcher._sweep"), pg, ("after",))
    return {
        "records": "postgresql" if pg else "sqlite",
        "webhooks": webhooks,
        "webhook_events_delivered": len(receiver.delivered()) if receiver else 0,
        "per_phase": per_phase,
        "call_total": call_totals(phases, ("request",), pg),
        "webhook_delivery_total": call_totals(phases, ("WebhookDispatcher._drain",), pg),
        "sweeper_during_call": call_totals(phases, ("ConsultDesk._sweep_forever",), pg),
        "idle_window_s": round(idle_s, 2),
        "idle_background_commits_per_s": round(idle.get("commits", 0) / idle_s, 2),
        "phases": phases,
    }


async def chat_lines(database_url: str | None, app_factory: AppFactory, lines: int = 3) -> dict[str, Any]:
    """A viewer's chat lines in a live show, each from ``chat`` sent to its echo (``log``) back."""
    import httpx
    import websockets

    shop = "ch-" + secrets.token_hex(4)
    async with contextlib.AsyncExitStack() as stack:
        server = await serve(stack, database_url, app_factory)
        runtime = server.runtime
        assert runtime is not None
        counter = StatementCounter(runtime.state.records.db.engine.sync_engine)
        measured = tuple((f"line_{i + 1}", f"viewer's chat line {i + 1}") for i in range(lines))
        try:
            async with server.api() as api:
                (
                    await api.post(
                        "/v1/shops",
                        json={
                            "id": shop,
                            "name": "Chat",
                            "opening_hours": ALWAYS_OPEN,
                            "allowed_origins": [f"https://{shop}.example"],
                        },
                    )
                ).raise_for_status()
                show = (await api.post(f"/v1/shops/{shop}/shows", json={"title": "Round trips"})).json()
                console = (await api.post(f"/v1/shops/{shop}/shows/{show['id']}/console")).json()["token"]
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                (
                    await http.post("/v1/live/console/start", headers={"Authorization": f"Bearer {console}"})
                ).raise_for_status()
                token = (await http.get(f"/v1/live/{shop}/{show['id']}/viewer")).json()["token"]
            async with websockets.connect(server.ws_url, max_size=2**22) as ws:
                await ws.send(json.dumps({"type": "join", "token": token}))
                while json.loads(await ws.recv())["type"] != "joined":
                    pass
                await counter.quiet()
                for key, _ in measured:
                    counter.phase = key
                    text = f"{key}: is the blue one in stock?"
                    await ws.send(json.dumps({"type": "chat", "text": text}))
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                        if message["type"] == "error":
                            raise RuntimeError(f"chat refused: {message}")
                        if message["type"] == "log" and message["entry"].get("text") == text:
                            break
                    await counter.quiet()
                counter.phase = "after"
                idle_t0 = time.monotonic()
                await asyncio.sleep(2.0)
                idle_s = time.monotonic() - idle_t0
                counter.phase = "teardown"
        finally:
            counter.remove()
    phases = counter.table(measured)
    pg = database_url is not None
    return {
        "records": "postgresql" if pg else "sqlite",
        "lines": lines,
        "per_line": {key: call_totals(phases, ("request",), pg, (key,)) for key, _ in measured},
        "all_lines": call_totals(phases, ("request",), pg, [key for key, _ in measured]),
        "idle_window_s": round(idle_s, 2),
        "phases": phases,
    }


async def _settle(counter: StatementCounter, runtime: Any, shop: str, receiver: Any) -> None:
    if receiver is not None:
        await _wait_outbox_empty(runtime, shop)
    await counter.quiet()


# -- (b) write throughput -----------------------------------------------------------------------------


class CommitClock:
    """When the last statement of the running write returned: what follows is its commit."""

    def __init__(self, sync_engine: Any) -> None:
        self.engine = sync_engine
        self.last_statement_done = 0.0
        event.listen(sync_engine, "after_cursor_execute", self._done)

    def _done(self, *args: Any) -> None:
        self.last_statement_done = time.perf_counter()

    def remove(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self._done)


def _chat_entry(i: int) -> Any:
    from vitrine.core.models import ParticipantView, Role, now_ms
    from vitrine.core.wire.rtc import LogEntry

    return LogEntry(
        seq=0,
        kind="chat",
        at_ms=now_ms(),
        text=f"line {i}: is the blue one in stock?",
        participant=ParticipantView(
            sid=f"PA_{i % 300}", identity=f"viewer-{i % 300}", role=Role.VIEWER, name=f"Viewer {i % 300}"
        ),
    )


def _call_record(shop: str, i: int) -> Any:
    from signaling.consult.models import CallOutcome, CallRecord, ChatLine, ShopperContext, new_ticket_id
    from vitrine.core.models import now_ms

    now = now_ms()
    return CallRecord(
        id=new_ticket_id(),
        shop=shop,
        context=ShopperContext(name=f"Shopper {i}", sku="mug-1"),
        outcome=CallOutcome.ANSWERED,
        agent="ann",
        room=f"consult-{i}-1",
        queued_ms=now - 30_000,
        answered_ms=now - 20_000,
        ended_ms=now,
        wait_ms=10_000,
        talk_ms=20_000,
        ended_by="agent",
        chat=[
            ChatLine(sender="shopper", name=f"Shopper {i}", text="Is it dishwasher safe?", at_ms=now - 15_000),
            ChatLine(sender="agent", name="Ann", text="Yes!", at_ms=now - 14_000),
        ],
        rating=5,
    )


def _stats(latencies_s: list[float], elapsed_s: float, commits_s: list[float] | None = None) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies_s]
    out = {
        "ops": len(ms),
        "elapsed_s": round(elapsed_s, 3),
        "ops_per_s": round(len(ms) / elapsed_s, 1),
        "latency_ms": summary(ms),
    }
    if commits_s is not None:
        commit_ms = [v * 1000 for v in commits_s]
        out["commit_ms"] = {
            "p50": percentile(commit_ms, 50),
            "p95": percentile(commit_ms, 95),
            "max": round(max(commit_ms), 2) if commit_ms else None,
        }
    return out


async def _sequential(clock: CommitClock, n: int, write: Any) -> dict[str, Any]:
    latencies, commits = [], []
    t0 = time.perf_counter()
    for i in range(n):
        start = time.perf_counter()
        await write(i)
        end = time.perf_counter()
        latencies.append(end - start)
        commits.append(end - clock.last_statement_done)
    return _stats(latencies, time.perf_counter() - t0, commits)


async def _concurrent(n: int, writers: int, write: Any) -> dict[str, Any]:
    latencies: list[float] = []

    async def writer(w: int) -> None:
        for i in range(w, n, writers):
            start = time.perf_counter()
            await write(i, w)
            latencies.append(time.perf_counter() - start)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return {**_stats(latencies, time.perf_counter() - t0), "writers": writers}


async def throughput(database_url: str | None, appends: int, calls: int, writers: int) -> dict[str, Any]:
    from signaling.records import open_records
    from vitrine.core.config import Settings
    from vitrine.core.shops import Shop

    data_dir = Path(tempfile.mkdtemp(prefix="vitrine-record-io-"))
    database: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = Settings(data_dir=str(data_dir), **database)
    records = await open_records(settings)
    clock = CommitClock(records.db.engine.sync_engine)
    run = secrets.token_hex(4)
    try:
        shop = f"io-{run}"
        await records.shops.create_shop(Shop(id=shop, name="Record IO"))
        log = records.roomlog
        progress(f"{records.db.dialect}: {appends} room-log appends, one at a time")
        one_room = await _sequential(
            clock, appends, lambda i: log.append(f"live-io-{run}-seq", _chat_entry(i), keep=100_000)
        )
        progress(f"{records.db.dialect}: {appends} room-log appends, {writers} writers in one room")
        shared = await _concurrent(
            appends, writers, lambda i, w: log.append(f"live-io-{run}-shared", _chat_entry(i), keep=100_000)
        )
        progress(f"{records.db.dialect}: {appends} room-log appends, {writers} writers in {writers} rooms")
        spread = await _concurrent(
            appends, writers, lambda i, w: log.append(f"live-io-{run}-room{w}", _chat_entry(i), keep=100_000)
        )
        progress(f"{records.db.dialect}: {calls} save_call, one at a time")
        call_records = [_call_record(shop, i) for i in range(calls)]
        saves = await _sequential(clock, calls, lambda i: records.consult.save_call(call_records[i]))
        check = await log.last_seq(f"live-io-{run}-shared")
        pool = records.db.engine.pool
        return {
            "records": records.db.dialect,
            "appends_one_at_a_time": one_room,
            "appends_concurrent_one_room": {**shared, "last_seq": check},
            "appends_concurrent_many_rooms": spread,
            "save_call_one_at_a_time": saves,
            "pool": {"size": pool.size() if isinstance(pool, QueuePool) else None, "class": type(pool).__name__},
        }
    finally:
        clock.remove()
        await records.close()
        shutil.rmtree(data_dir, ignore_errors=True)


# -- the run ------------------------------------------------------------------------------------------


async def _migrate(url: str) -> None:
    from vitrine.core.records import migrate
    from vitrine.core.records.database import open_database

    db = open_database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()


async def benchmark(args: argparse.Namespace, app_factory: AppFactory = create_app) -> dict[str, Any]:
    started = time.monotonic()
    if args.database_url:
        await _migrate(args.database_url)
    targets: list[str | None] = [None] + ([args.database_url] if args.database_url else [])
    round_trips, chat = [], []
    for url in targets:
        for webhooks in (False, True):
            progress(f"one consult call: {'postgresql' if url else 'sqlite'}, webhooks {'on' if webhooks else 'off'}")
            round_trips.append(await one_call(url, webhooks, app_factory))
        progress(f"a viewer's chat lines in a live show: {'postgresql' if url else 'sqlite'}")
        chat.append(await chat_lines(url, app_factory))
    writes = []
    for url in targets:
        writes.append(await throughput(url, args.appends, args.calls, args.writers))
    return {
        "benchmark": "record_io",
        "round_trips": round_trips,
        "chat_line_round_trips": chat,
        "throughput": writes,
        "appends": args.appends,
        "calls": args.calls,
        "writers": args.writers,
        "wall_s": round(time.monotonic() - started, 1),
        "machine": machine_facts(),
    }


def report(result: dict[str, Any]) -> dict[str, Any]:
    """The compact view printed to the console: per phase, the call's statements/commits."""
    out: dict[str, Any] = {}
    for run in result["round_trips"]:
        name = f"{run['records']}, webhooks {'on' if run['webhooks'] else 'off'}"
        rows = {}
        for key, _ in PHASES:
            c = run["per_phase"][key]
            kinds = {k: c[k] for k in KINDS if k in c and k != "BEGIN"}
            rows[key] = f"{c.get('statements_without_begin', 0)} statements {kinds}, {c.get('commits', 0)} tx" + (
                f"; delivery {c['delivery'].get('statements_without_begin', 0)} st, "
                f"{c['delivery'].get('commits', 0)} tx"
                if "delivery" in c
                else ""
            )
        rows["total"] = run["call_total"]
        rows["idle_background_commits_per_s"] = run["idle_background_commits_per_s"]
        out[name] = rows
    for run in result["chat_line_round_trips"]:
        out[f"live chat line, {run['records']}"] = run["per_line"]
    for w in result["throughput"]:
        out[f"writes {w['records']}"] = {
            k: {
                "ops_per_s": v["ops_per_s"],
                "p50": v["latency_ms"]["p50"],
                "p95": v["latency_ms"]["p95"],
                "commit": v.get("commit_ms"),
            }
            for k, v in w.items()
            if isinstance(v, dict) and "ops_per_s" in v
        }
    return out


def configuration(result: dict[str, Any]) -> str:
    """before: memory / before: redis (no records database), or e.g. sqlite + redis."""
    if "records" not in result:
        return f"before: {result['state']}"
    return result["records"] + (" + redis" if result["state"] == "redis" else "")


def compare(paths: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path in paths:
        result = json.loads(path.read_text())
        if result["benchmark"] == "consult_queue":
            title = (
                f"queue entry to consoles: {result['agents']} consoles, {result['shoppers']} shoppers "
                f"every {result['interval_ms']:g} ms"
            )
        elif result["benchmark"] == "chat_fanout":
            title = f"chat fan-out: {result['viewers']} viewers, {result['rate_per_s']} lines/s"
        else:
            continue
        panels.setdefault(title, []).append((configuration(result), result["latency_ms"]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.1 * len(panels)), squeeze=False)
    order = ["before: memory", "before: redis", "sqlite", "sqlite + redis", "postgresql", "postgresql + redis"]
    for ax, (title, rows) in zip(axes[:, 0], panels.items(), strict=True):  # panels in the order given
        rows.sort(key=lambda row: order.index(row[0]) if row[0] in order else len(order))
        y = list(range(len(rows)))
        ax.barh([i - 0.2 for i in y], [r["p50"] for _, r in rows], height=0.4, label="p50")
        ax.barh([i + 0.2 for i in y], [r["p95"] for _, r in rows], height=0.4, label="p95")
        for i, (_, r) in enumerate(rows):
            ax.text(r["p50"], i - 0.2, f" {r['p50']:.1f}", va="center", fontsize=7)
            ax.text(r["p95"], i + 0.2, f" {r['p95']:.1f}", va="center", fontsize=7)
        ax.set_yticks(y, [name for name, _ in rows], fontsize=8)
        ax.invert_yaxis()  # the first configuration on top
        ax.axvline(100, color="red", linestyle="--", linewidth=1, label="target p95 100 ms")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None, app_factory: AppFactory = create_app) -> None:
    """``app_factory``: the app the round trips are counted on (a composition root may pass its own)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=None,
        help="also on PostgreSQL (postgresql+asyncpg://...): a database this may write to",
    )
    parser.add_argument("--appends", type=int, default=2000, help="room-log appends per throughput run")
    parser.add_argument("--calls", type=int, default=1000, help="save_call writes")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", type=Path, nargs="+", help="consult_queue/chat_fanout JSONs to plot instead")
    parser.add_argument("--plot", type=Path, help="with --compare: where the PNG goes")
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.compare, args.plot or Path("records-latency.png"))
        return
    result = asyncio.run(benchmark(args, app_factory))
    print(json.dumps(report(result), indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
