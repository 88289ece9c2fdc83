"""The runner: a target server, the rooms, K worker processes, the load shape, the hold, the collection.

Everything here is bounded in time: every wait has a deadline derived from the
configuration (``loadtest.worker.lifetime_s``), and child processes are
terminated, then killed, if they outlive it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any, TextIO

import httpx

from loadtest import netns, scenarios
from loadtest.config import RunConfig
from loadtest.scaled import ScaledDeployment
from loadtest.server import API_KEY, ServerProcess, ServerStartError, stop_process, tree_cpu_seconds
from loadtest.worker import lifetime_s, worker_main

READY_TIMEOUT_S = 90.0  # spawned workers import aiortc, numpy, av...
STOP_TIMEOUT_S = 10.0
PHASE0_EXTRA_S = 5.0
GO_LEAD_S = 0.3  # the runner announces a start this far ahead, so every worker starts together


class HarnessError(RuntimeError):
    """The harness could not run (the server did not start, a worker died...): not an SLO verdict."""


def _proc_cpu_seconds(pid: int) -> float | None:
    """The server's CPU, its media worker processes' included (`vitrine serve` runs one per core)."""
    try:
        return tree_cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Target:
    url: str
    api_key: str
    api_secret: str
    mint_locally: bool
    server: ServerProcess | None = None
    netns: str | None = None  # kernel impairment: the namespace the workers enter


def open_target(config: RunConfig, link: netns.KernelLink | None = None) -> Target:
    """The server to load; with a kernel-impairment ``link``, an embedded one on the link's host side."""
    if config.embedded:
        rooms_needed = config.pairs if config.scenario != "live" else 1
        host = link.host_ip if link else "127.0.0.1"
        server = (
            ScaledDeployment(max_rooms=max(200, rooms_needed + 20), media_workers=config.media_workers)
            if config.media_workers
            else ServerProcess(max_rooms=max(200, rooms_needed + 20), host=host)
        )
        try:
            server.start()
        except ServerStartError as exc:
            raise HarnessError(str(exc)) from None
        return Target(
            server.url, API_KEY, server.secret, mint_locally=True, server=server, netns=link.name if link else None
        )
    assert config.url and config.api_key and config.api_secret
    return Target(config.url.rstrip("/"), config.api_key, config.api_secret, mint_locally=False)


# -- progress ----------------------------------------------------------------------------


class Progress:
    """A live line on stderr: started, joined, connected, first frame, failed."""

    def __init__(self, total: int, label: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.counts = {"start": 0, "joined": 0, "connected": 0, "first_frame": 0, "ready": 0, "failed": 0}
        self.t0 = time.monotonic()
        self.hold: tuple[float, float] | None = None
        self._last = 0.0
        self.states: dict[str, set[str]] = {}

    def event(self, client: str, event: str) -> None:
        seen = self.states.setdefault(client, set())
        if event in seen:
            return
        seen.add(event)
        if event in self.counts:
            self.counts[event] += 1

    def settled(self, ids: list[str]) -> bool:
        return all({"ready", "failed"} & self.states.get(i, set()) for i in ids)

    def line(self) -> str:
        c = self.counts
        done = c["ready"] + c["failed"]
        width = 24
        filled = int(width * done / max(self.total, 1))
        text = (
            f"{self.label} [{'#' * filled}{'.' * (width - filled)}] started {c['start']}/{self.total} "
            f"joined {c['joined']} connected {c['connected']} first-frame {c['first_frame']} "
            f"failed {c['failed']}  t+{time.monotonic() - self.t0:.1f}s"
        )
        if self.hold is not None:
            start, end = self.hold
            now = time.monotonic()
            if now >= start:
                text += f"  hold {min(now, end) - start:.0f}/{end - start:.0f}s"
        return text

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.25 if self.tty else 2.0):
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.show(force=True)
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()


def message(text: str, enabled: bool = True) -> None:
    if enabled:
        print(f"loadtest: {text}", file=sys.stderr, flush=True)


# -- rooms -----------------------------------------------------------------------------


def create_rooms(target: Target, rooms: list[scenarios.RoomSpec]) -> None:
    with httpx.Client(base_url=target.url, auth=(target.api_key, target.api_secret), timeout=30.0) as http:
        for room in rooms:
            response = http.post(
                "/v1/rooms", json={"name": room.name, "kind": room.kind, "max_participants": room.max_participants}
            )
            if response.status_code >= 400:
                raise HarnessError(
                    f"could not create room {room.name}: HTTP {response.status_code} {response.text[:300]}"
                )


def delete_rooms(target: Target, rooms: list[scenarios.RoomSpec]) -> None:
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.Client(base_url=target.url, auth=(target.api_key, target.api_secret), timeout=10.0) as http,
    ):
        for room in rooms:
            http.delete(f"/v1/rooms/{room.name}")


# -- one run -----------------------------------------------------------------------------


@dataclass
class PointResult:
    config: RunConfig
    clients: list[dict[str, Any]]
    workers: list[dict[str, Any]]
    server: dict[str, Any]
    timing: dict[str, Any]
    kernel: dict[str, Any] | None = None  # KernelLink.report() for this point, in kernel-impairment mode


class _Workers:
    def __init__(self, config: RunConfig, target: Target, shares: list[list[scenarios.ClientSpec]]) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for wid, share in enumerate(shares):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                name=f"loadtest-worker-{wid}",
                daemon=True,
                args=(
                    wid,
                    config,
                    share,
                    target.url,
                    target.api_key,
                    target.api_secret,
                    target.mint_locally,
                    child,
                    target.netns,
                ),
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.ready: dict[int, int] = {}
        self.results: dict[int, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        self.errors: dict[int, str] = {}
        self.dead: set[int] = set()

    def broadcast(self, *message: Any) -> None:
        for wid, conn in enumerate(self.conns):
            if wid not in self.dead and wid not in self.results:
                with contextlib.suppress(OSError, BrokenPipeError):
                    conn.send(message)

    def pump(self, progress: Progress, timeout: float) -> None:
        """Read whatever the workers sent within ``timeout`` seconds."""
        live = [c for i, c in enumerate(self.conns) if i not in self.dead and i not in self.results]
        if not live:
            time.sleep(min(timeout, 0.05))
            return
        ready = wait(live, timeout=timeout)
        for conn in (c for c in live if c in ready):
            wid = self.conns.index(conn)
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                self.dead.add(wid)
                if wid not in self.results:
                    self.errors.setdefault(wid, f"worker {wid} exited (code {self.procs[wid].exitcode})")
                continue
            kind = msg[0]
            if kind == "ready":
                self.ready[wid] = msg[2]
            elif kind == "events":
                for client, event in msg[2]:
                    progress.event(client, event)
            elif kind == "result":
                self.results[wid] = (msg[2], msg[3])
            elif kind == "error":
                self.errors[wid] = msg[2]
                self.dead.add(wid)

    def finished(self) -> bool:
        return all(i in self.results or i in self.dead for i in range(len(self.procs)))

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc, STOP_TIMEOUT_S)
        for conn in self.conns:
            conn.close()


def run_point(config: RunConfig, target: Target, label: str = "") -> PointResult:
    """One load test at one impairment point."""
    rooms, clients = scenarios.build(config)
    shares = scenarios.assign(clients, config.worker_count)
    progress = Progress(len(clients), label or config.scenario, config.progress)
    create_rooms(target, rooms)
    log_offset = target.server.log_size() if target.server else 0
    workers = _Workers(config, target, shares)
    timing: dict[str, Any] = {}
    server_cpu: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(workers.ready) < len(shares) and time.monotonic() < deadline:
            workers.pump(progress, 0.2)
            if workers.errors:
                raise HarnessError("a worker failed to start:\n" + "\n".join(workers.errors.values()))
        if len(workers.ready) < len(shares):
            raise HarnessError(
                f"only {len(workers.ready)} of {len(shares)} workers started within {READY_TIMEOUT_S:.0f} s"
            )
        t_go = time.monotonic()
        phase0 = [c.id for c in clients if c.phase == 0]
        if phase0:
            workers.broadcast("go", 0, time.monotonic() + GO_LEAD_S)
            deadline = time.monotonic() + GO_LEAD_S + config.join_timeout_s + PHASE0_EXTRA_S
            while not progress.settled(phase0) and time.monotonic() < deadline and not workers.finished():
                workers.pump(progress, 0.1)
                progress.show()
        start_at = time.monotonic() + GO_LEAD_S
        hold_end = start_at + config.ramp_span_s + config.duration_s
        workers.broadcast("go", 1, start_at)
        workers.broadcast("hold_end", hold_end)
        progress.hold = (start_at + config.ramp_span_s, hold_end)
        timing.update(
            phase1_start_offset_s=round(start_at - t_go, 3),
            ramp_s=round(config.ramp_span_s, 3),
            hold_s=config.duration_s,
        )
        cpu0 = _proc_cpu_seconds(target.server.proc.pid) if target.server and target.server.proc else None
        cpu_t0 = time.monotonic()
        collect_deadline = hold_end + config.join_timeout_s + 60.0
        hard_deadline = t_go + lifetime_s(config)
        while not workers.finished() and time.monotonic() < min(collect_deadline, hard_deadline):
            workers.pump(progress, 0.1)
            progress.show()
            if cpu0 is not None and "cores" not in server_cpu and time.monotonic() >= hold_end:
                cpu1 = _proc_cpu_seconds(target.server.proc.pid)  # type: ignore[union-attr]
                if cpu1 is not None:
                    server_cpu["cores"] = round((cpu1 - cpu0) / (time.monotonic() - cpu_t0), 3)
        if not workers.finished():
            workers.broadcast("abort", "the run's time budget ran out")
            end = time.monotonic() + 15
            while not workers.finished() and time.monotonic() < end:
                workers.pump(progress, 0.1)
        progress.close()
        timing["total_s"] = round(time.monotonic() - t_go, 3)
    finally:
        workers.stop()
        delete_rooms(target, rooms)
    records: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []
    for wid, share in enumerate(shares):
        if wid in workers.results:
            recs, st = workers.results[wid]
            records.extend(recs)
            stats.append(st)
        else:
            reason = workers.errors.get(wid, "no result from the worker")
            stats.append({"worker": wid, "pid": None, "clients": len(share), "error": reason[-2000:]})
            records.extend(_lost_record(spec, reason) for spec in share)
    records.sort(key=lambda r: r["id"])
    server: dict[str, Any] = {
        "url": target.url,
        "embedded": target.server is not None,
        "cpu_cores": server_cpu.get("cores"),
    }
    if target.server is not None:
        count, lines = target.server.log_problems(log_offset)
        server.update(
            log_problem_lines=count,
            log_excerpt=lines,
            alive=target.server.proc.poll() is None if target.server.proc else False,
        )
    return PointResult(config=config, clients=records, workers=stats, server=server, timing=timing)


def _lost_record(spec: scenarios.ClientSpec, reason: str) -> dict[str, Any]:
    return {
        "id": spec.id,
        "role": spec.role,
        "room": spec.room,
        "identity": spec.identity,
        "publishes": spec.publish,
        "watches": spec.watch,
        "phase": spec.phase,
        "ok": False,
        "failure": {"stage": "harness", "reason": "harness error: worker lost"},
        "harness_error": reason[-500:],
        "stages_ms": {},
        "join_ms": None,
        "participant_sid": None,
        "remote_participant_sid": None,
        "media": None,
        "captures": [],
        "impairment": None,
    }


def run(config: RunConfig) -> list[PointResult]:
    """Every point of the run (one, or one per --loss value of a sweep), against one target.

    In kernel-impairment mode the namespace link is created first (the server listens on its
    host side, the clients gather candidates on its namespace side) and removed last, after
    the server and the workers have stopped: nothing is left sending to its addresses.
    """
    if config.impairment.mode != "kernel":
        return _run_points(config, None)
    try:
        with netns.open_link() as link:
            return _run_points(replace(config, rtc_interfaces=(link.client_ip,)), link)
    except netns.NetnsError as exc:
        raise HarnessError(f"kernel impairment: {exc}") from None


def _run_points(config: RunConfig, link: netns.KernelLink | None) -> list[PointResult]:
    from media import taps

    taps.configure_host_candidates(config.interfaces())
    message(
        f"target: {_target_name(config)}"
        + (f" on {link.host_ip}, clients in network namespace {link.name}" if link else ""),
        config.progress,
    )
    target = open_target(config, link)
    results: list[PointResult] = []
    try:
        for i, loss in enumerate(config.losses_pct):
            point = config.point(loss)
            label = config.scenario if not config.is_sweep else f"{config.scenario} loss {loss:g}%"
            if config.is_sweep:
                message(f"sweep point {i + 1}/{len(config.losses_pct)}: loss {loss:g}%", config.progress)
            if link is not None:
                link.apply(point.impairment)  # a fresh table per point: its counters start at zero
            result = run_point(point, target, label)
            if link is not None:
                result.kernel = link.report()
            results.append(result)
            if target.server is not None and target.server.proc is not None and target.server.proc.poll() is not None:
                raise HarnessError(f"vitrine serve died during the run:\n{target.server.log_tail()}")
    finally:
        if target.server is not None:
            target.server.stop()
    return results


def _target_name(config: RunConfig) -> str:
    if config.media_workers:
        return f"scaled mode started here: signaling and {config.media_workers} media workers on a throwaway Redis"
    return "embedded vitrine serve" if config.embedded else str(config.url)
