"""A scaled deployment on loopback for the harness: a throwaway ``redis-server``, one ``vitrine signaling`` and
``media_workers`` ``vitrine media`` processes, each with its own log file and its own metrics port.

It exists so that scaled mode can be loaded the way ``--embedded`` loads ``vitrine serve``
(``python -m loadtest run --scaled 2``), and so that a test can kill one of its workers. Records stay in SQLite
in the run's own directory: one signaling node needs no PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtest.server import (
    API_KEY,
    HEALTH_TIMEOUT_S,
    PROBLEM_WORDS,
    STOP_TIMEOUT_S,
    ServerProcess,
    ServerStartError,
    free_port,
    with_parent_death,
)
from media.metrics import media_stats_from_metrics

HEARTBEAT_S = 0.5  # short, so a killed worker is noticed within a couple of seconds (its TTL)
TTL_S = 2.0


@dataclass
class MediaProcess:
    """One ``vitrine media`` process: its node id (it registers as ``<node>-media``) and metrics port."""

    node: str
    metrics_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def worker_id(self) -> str:
        return f"{self.node}-media"

    def metrics(self) -> str:
        with httpx.Client(timeout=10.0) as client:
            return client.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text


@dataclass
class ScaledDeployment(ServerProcess):
    """Signaling plus ``media_workers`` worker processes on a Redis of their own (or ``redis_url``'s).

    It answers what the runner asks of an embedded ``ServerProcess`` (url, secret, the signaling process, its log
    problems), and adds the workers: their logs' problems are counted with the signaling's."""

    media_workers: int = 2
    heartbeat_s: float = HEARTBEAT_S
    ttl_s: float = TTL_S
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[MediaProcess] = field(default_factory=list)
    _redis: subprocess.Popen[bytes] | None = None
    _logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vitrine-scaled-")))

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "VITRINE_WORKER_HEARTBEAT_S": str(self.heartbeat_s),
            "VITRINE_WORKER_TTL_S": str(self.ttl_s),
            **self.extra_env,
        }

    def start(self) -> None:
        if self.redis_url is None:
            self.redis_url = self._start_redis()
        self.log_path = self._logs / "signaling.log"
        self.proc = self._spawn(["signaling", "--host", self.host, "--port", str(self.port)], self.log_path, {})
        for _ in range(self.media_workers):
            self.add_worker()
        self._wait_ready()

    def add_worker(self) -> MediaProcess:
        """Start one more worker (it registers within a heartbeat; ``wait_workers`` waits for it)."""
        node = f"lt-{len(self.workers)}-{os.urandom(3).hex()}"
        port = free_port(self.host)
        log = self._logs / f"media-{len(self.workers)}.log"
        env = {"VITRINE_NODE_ID": node, "VITRINE_WORKER_METRICS_PORT": str(port)}
        worker = MediaProcess(node, port, self._spawn(["media"], log, env), log)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker_id: str) -> MediaProcess:
        """SIGKILL the worker registered as ``worker_id``: no drain, no deregistration, as a crash."""
        worker = next(w for w in self.workers if w.worker_id == worker_id)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(STOP_TIMEOUT_S)
        return worker

    def live_worker_ids(self) -> set[str]:
        with httpx.Client(base_url=self.url, auth=(API_KEY, self.secret), timeout=10.0) as client:
            response = client.get("/v1/workers")
            response.raise_for_status()
            rows: list[dict[str, Any]] = response.json()
        return {row["id"] for row in rows}

    def wait_workers(self, expected: set[str], timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if self.live_worker_ids() >= expected:
                    return
            time.sleep(0.1)
        raise ServerStartError(f"workers {sorted(expected)} did not register within {timeout_s:.0f} s")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            else:
                self.stop()
                raise ServerStartError(f"signaling was not healthy within {HEALTH_TIMEOUT_S:.0f} s:\n{self.log_tail()}")
        self.wait_workers({w.worker_id for w in self.workers}, max(deadline - time.monotonic(), 1.0))

    def _check_alive(self) -> None:
        for name, proc in [("signaling", self.proc), *((w.node, w.proc) for w in self.workers)]:
            if proc is not None and proc.poll() is not None and not self._killed(proc):
                self.stop()
                raise ServerStartError(f"{name} exited with {proc.returncode}:\n{self.log_tail()}")

    def _killed(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.returncode == -signal.SIGKILL

    def _spawn(self, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                with_parent_death([sys.executable, "-m", "vitrine.cli", *args]),
                env={**self.env(), **env},
                cwd=self.source,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _start_redis(self) -> str:
        import redis

        port = free_port("127.0.0.1")
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._redis = subprocess.Popen(
            with_parent_death([*args, "--dir", str(self._logs), "--logfile", str(self._logs / "redis.log")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._redis.poll() is not None:
                raise ServerStartError(f"redis-server exited with {self._redis.returncode}")
            try:
                with redis.Redis.from_url(url, socket_timeout=1) as client:
                    if client.ping():
                        return url
            except redis.ConnectionError:
                time.sleep(0.05)
        raise ServerStartError(f"redis-server did not answer within {HEALTH_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Workers first (SIGINT: at once, without the drain a SIGTERM starts), then signaling, then Redis."""
        for worker in self.workers:
            _terminate(worker.proc, signal.SIGINT)
        super().stop()
        if self._redis is not None:
            _terminate(self._redis)

    def log_problems(self, offset: int = 0) -> tuple[int, list[str]]:
        count, lines = super().log_problems(offset)
        for worker in self.workers:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            found = [f"{worker.node}: {line}" for line in text.splitlines() if any(w in line for w in PROBLEM_WORDS)]
            count, lines = count + len(found), (lines + found)[-20:]
        return count, lines

    def log_tail(self, chars: int = 4000) -> str:
        tails = [super().log_tail(chars)]
        for worker in self.workers:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            tails.append(f"--- {worker.node}\n{text[-chars:]}")
        return "\n".join(tails)

    def media_stats(self) -> dict[str, float]:
        """Every live worker's forwarding counters, summed."""
        total: dict[str, float] = {}
        for worker in self.workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    for key, value in media_stats_from_metrics(worker.metrics()).items():
                        total[key] = total.get(key, 0.0) + value
        return total


def _terminate(proc: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(how)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)
