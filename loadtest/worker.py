"""A harness worker process: its own asyncio loop running a share of the clients.

Protocol on the duplex pipe to the runner (all messages are tuples of JSON-able values):

worker -> runner: ``("ready", wid, pid)``, ``("events", wid, [[client_id, event], ...])``,
                  ``("result", wid, records, stats)`` or ``("error", wid, text)``
runner -> worker: ``("go", phase, start_at)``, ``("hold_end", at)``, ``("abort", reason)``

Times are ``time.monotonic()``, which every process on one Linux machine shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from loadtest import netns
from loadtest.config import RunConfig
from loadtest.scenarios import ClientSpec
from loadtest.stats import distribution

POLL_S = 0.02
FLUSH_S = 0.25
LAG_PROBE_S = 0.1
STARTUP_GRACE_S = 120.0  # waiting for the runner's go, phase 0 included


def lifetime_s(config: RunConfig) -> float:
    """An upper bound on a worker's life: every loop in it ends by then."""
    return STARTUP_GRACE_S + 2 * config.join_timeout_s + config.ramp_span_s + config.duration_s + 60.0


def worker_main(
    wid: int,
    config: RunConfig,
    specs: list[ClientSpec],
    base_url: str,
    api_key: str,
    api_secret: str,
    mint_locally: bool,
    conn: Connection,
    netns_name: str | None = None,
) -> None:
    """Run ``specs`` to completion; with ``netns_name``, first move into that network namespace (kernel impairment)."""
    from media import taps

    if netns_name is not None:
        try:
            netns.enter(netns_name)  # first, before any socket: a socket stays in the namespace it was made in
        except (OSError, netns.NetnsError) as exc:
            conn.send(("error", wid, f"worker {wid} could not enter network namespace {netns_name}: {exc}"))
            return
    taps.configure_host_candidates(config.interfaces())
    try:
        asyncio.run(_serve(wid, config, specs, base_url, api_key, api_secret, mint_locally, conn))
    except BaseException:  # report and exit: the runner is waiting on the pipe
        with contextlib.suppress(Exception):
            conn.send(("error", wid, traceback.format_exc(limit=8)))


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def _serve(
    wid: int,
    config: RunConfig,
    specs: list[ClientSpec],
    base_url: str,
    api_key: str,
    api_secret: str,
    mint_locally: bool,
    conn: Connection,
) -> None:
    from loadtest.context import AgentContext, TokenSource
    from loadtest.whip_agent import WhipAgent
    from loadtest.ws_agent import WsAgent
    from media import taps

    deadline = time.monotonic() + lifetime_s(config)
    events: list[list[str]] = []
    tokens = TokenSource(base_url, api_key, api_secret, mint_locally)
    tokens.prepare()
    ctx = AgentContext(config, base_url, tokens, lambda cid, event: events.append([cid, event]))
    done = asyncio.Event()
    lags: list[float] = []
    cpu_start: list[float] = []

    async def read_commands() -> None:
        while not done.is_set() and time.monotonic() < deadline:
            while conn.poll():
                message = conn.recv()
                if message[0] == "go":
                    if not cpu_start:
                        cpu_start.extend((_cpu_seconds(), time.monotonic()))
                    ctx.go(int(message[1]), float(message[2]))
                elif message[0] == "hold_end":
                    ctx.set_hold_end(float(message[1]))
                elif message[0] == "abort":
                    ctx.abort(str(message[1]))
            await asyncio.sleep(POLL_S)
        ctx.abort("the worker's time budget ran out")

    async def flush_events() -> None:
        while not done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(FLUSH_S)
            if events:
                conn.send(("events", wid, events[:]))
                events.clear()

    async def probe_lag() -> None:
        while not done.is_set() and time.monotonic() < deadline:
            before = time.monotonic()
            await asyncio.sleep(LAG_PROBE_S)
            if cpu_start and len(lags) < 100_000:
                lags.append((time.monotonic() - before - LAG_PROBE_S) * 1000)

    helpers = [asyncio.create_task(f()) for f in (read_commands, flush_events, probe_lag)]
    conn.send(("ready", wid, os.getpid()))
    agent_class = WhipAgent if config.transport == "whip" else WsAgent
    agents = [asyncio.create_task(agent_class(spec, ctx).run()) for spec in specs]
    finished, pending = await asyncio.wait(agents, timeout=max(1.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
    records: list[dict[str, Any]] = []
    for spec, task in zip(specs, agents):
        if task in finished and task.exception() is None:
            records.append(task.result())
        else:
            error = "the worker's time budget ran out" if task in pending else repr(task.exception())
            records.append(
                {
                    "id": spec.id,
                    "role": spec.role,
                    "room": spec.room,
                    "identity": spec.identity,
                    "publishes": spec.publish,
                    "watches": spec.watch,
                    "phase": spec.phase,
                    "ok": False,
                    "failure": {"stage": "harness", "reason": f"harness error: {error[:200]}"},
                    "stages_ms": {},
                    "join_ms": None,
                    "participant_sid": None,
                    "remote_participant_sid": None,
                    "media": None,
                    "captures": [],
                    "impairment": None,
                }
            )
    with contextlib.suppress(Exception):
        await asyncio.wait(pending, timeout=5)
    done.set()
    for helper in helpers:
        helper.cancel()
    await ctx.close()
    if events:
        conn.send(("events", wid, events[:]))
    lag = distribution(lags)
    elapsed_cpu = _cpu_seconds() - (cpu_start[0] if cpu_start else 0.0)
    wall = time.monotonic() - cpu_start[1] if cpu_start else 0.0
    stats = {
        "worker": wid,
        "pid": os.getpid(),
        "clients": len(specs),
        "cpu_s": round(elapsed_cpu, 3),
        "cpu_cores": round(elapsed_cpu / wall, 3) if wall > 0 else None,
        "loop_lag_ms": {k: lag[k] for k in ("p50", "p95", "p99", "max")},
        "dtls_flights_resent": getattr(taps.HandshakeAccelerator, "dtls_flights_resent", 0),
    }
    conn.send(("result", wid, records, stats))
