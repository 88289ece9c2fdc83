"""``vitrine serve`` as a child process on loopback, for the harness and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from media.metrics import media_stats_from_metrics

API_KEY = "loadtest"
HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PROBLEM_WORDS = ("ERROR", "CRITICAL", "Traceback", "Exception", "WARNING")


class ServerStartError(RuntimeError):
    """The server process exited or never became healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# Run by the child itself, after its exec: ask for SIGTERM when the parent dies (PR_SET_PDEATHSIG survives the next
# exec), give up if the parent is already gone, then become the real command. A ``preexec_fn`` would run between
# fork and exec instead, where a lock another thread of the parent held at the fork (an executor thread starting a
# deployment, say) hangs the child forever, and its parent with it: seen in the suite as a teardown that never ended.
_PARENT_DEATH_GUARD = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execvp(sys.argv[2], sys.argv[2:])"
)


def with_parent_death(args: list[str]) -> list[str]:
    """``args`` as a command that gets SIGTERM when this process dies (Linux), with the same pid once running."""
    return [sys.executable, "-c", _PARENT_DEATH_GUARD, str(os.getpid()), *args]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (its children's children too)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = [int(child) for child in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and every live process below it: `vitrine serve` with its media worker processes."""
    total = proc_cpu_seconds(pid)
    for child in descendants(pid):
        with contextlib.suppress(FileNotFoundError, IndexError, ValueError):
            total += proc_cpu_seconds(child)
    return total


def stop_process(proc: Any, timeout: float = 15.0) -> None:
    """Wait for a multiprocessing child, then terminate, then kill."""
    if proc.pid is None:
        return
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


@dataclass
class ServerProcess:
    """``vitrine serve`` (signaling and its media workers), with a throwaway secret and its own log file.

    ``host`` is where it listens and gathers media candidates: loopback, or the host side of
    the harness's veth pair in kernel-impairment mode (``loadtest.netns``).
    """

    max_participants: int = 10_000
    max_rooms: int = 200
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(30))  # 40 characters
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port on ``host``
    redis_url: str | None = None  # coordination in Redis (presence, rooms, locks, pub/sub)
    database_url: str | None = None  # records in PostgreSQL; by default SQLite in ``data_dir``
    # A run's own records, evidence and recordings: never the working directory's ./var.
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vitrine-loadtest-")))
    # Serve this checkout's code instead of the one the harness runs from (a benchmark's "before", from a
    # ``git worktree`` of an earlier commit, with the same virtualenv).
    source: Path | None = None
    serve_workers: str | None = None  # `vitrine serve`'s ``VITRINE_MEDIA_WORKERS``; None: its default (one per core)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """The server's CPU so far, its media worker processes' included."""
        return tree_cpu_seconds(self.pid)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VITRINE_API_KEY": API_KEY,
            "VITRINE_API_SECRET": self.secret,
            "VITRINE_HOST": self.host,
            "VITRINE_PORT": str(self.port),
            "VITRINE_RTC_INTERFACES": self.host,
            "VITRINE_LOG_LEVEL": "warning",
            "VITRINE_MAX_PARTICIPANTS_PER_ROOM": str(self.max_participants),
            "VITRINE_MAX_ROOMS_PER_WORKER": str(self.max_rooms),
            # Every client of the harness comes from this one address: no per-address connection cap.
            "VITRINE_MAX_CONNECTIONS_PER_CLIENT": "0",
            "VITRINE_DATA_DIR": str(self.data_dir),
            "VITRINE_EVIDENCE_DIR": str(self.data_dir / "evidence"),
            "VITRINE_RECORDINGS_DIR": str(self.data_dir / "recordings"),
            **({"VITRINE_REDIS_URL": self.redis_url} if self.redis_url else {}),
            **({"VITRINE_DATABASE_URL": self.database_url} if self.database_url else {}),
            **({"PYTHONPATH": str(self.source)} if self.source else {}),
            **({"VITRINE_MEDIA_WORKERS": self.serve_workers} if self.serve_workers is not None else {}),
        }

    def start(self) -> None:
        fd, name = tempfile.mkstemp(prefix="vitrine-serve-", suffix=".log")
        self.log_path = Path(name)
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                with_parent_death([sys.executable, "-m", "vitrine.cli", "serve"]),
                env=self.env(),
                cwd=self.source,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerStartError(f"vitrine serve exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"vitrine serve was not healthy within {HEALTH_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path is not None and self.log_path.exists() else 0

    def log_problems(self, offset: int = 0) -> tuple[int, list[str]]:
        """Warning, error and traceback lines the server logged after byte ``offset``."""
        if self.log_path is None or not self.log_path.exists():
            return 0, []
        with self.log_path.open("rb") as f:
            f.seek(offset)
            text = f.read(4_000_000).decode(errors="replace")
        lines = [line for line in text.splitlines() if any(word in line for word in PROBLEM_WORDS)]
        return len(lines), lines[-20:]

    def settings(self) -> Any:
        from vitrine.core.config import Settings

        return Settings(api_key=API_KEY, api_secret=self.secret, host=self.host, port=self.port)

    def create_live_room(self, name: str, max_participants: int) -> None:
        with httpx.Client(base_url=self.url, auth=(API_KEY, self.secret), timeout=10.0) as client:
            response = client.post(
                "/v1/rooms", json={"name": name, "kind": "live", "max_participants": max_participants}
            )
            response.raise_for_status()

    def media_stats(self) -> dict[str, float]:
        """The worker's forwarding counters and load, parsed from /metrics (``media.metrics``)."""
        with httpx.Client(timeout=15.0) as client:
            text = client.get(self.url + "/metrics").text
        return media_stats_from_metrics(text)
