"""Durability test helpers: a real ``vitrine serve`` child process that is stopped (SIGTERM) or killed
(SIGKILL) and started again on the same data, evidence and recordings directories, plus the few flows
the durability tests drive through it (a closed inspection case, a shopper leaving a request, a bundle
checked offline)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from signaling.inspect.bundle import verify_bundle
from tests.desk_helpers import DeskClient
from tests.servers import TEST_SECRET, ProcessGroup, RunningServer, free_port, wait_healthy
from vitrine.core.config import Settings

# The child's environment is built from scratch: a VITRINE_* variable of the shell running the tests
# (a database URL, a Redis URL) must never point a durability test at other storage.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
API_KEY = "testkey"
START_TIMEOUT_S = 90.0  # a loaded 2-core machine imports aiortc and friends slowly
STOP_TIMEOUT_S = 30.0
DEADLINE_S = 30.0


class ServerProcess:
    """One embedded server (``python -m vitrine.cli serve``) whose incarnations share one set of directories.

    Each start takes a fresh port (no incarnation's clients can reach the next by accident) and its own
    log; ``output()`` returns every incarnation's log for a failing test's report.
    """

    def __init__(self, root: Path | None = None, **settings: object) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="vitrine-durable-"))
        self.data_dir = self.root / "data"
        self.evidence_dir = self.root / "evidence"
        self.recordings_dir = self.root / "recordings"
        for folder in (self.data_dir, self.evidence_dir, self.recordings_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            "VITRINE_API_KEY": API_KEY,
            "VITRINE_API_SECRET": TEST_SECRET,
            "VITRINE_DATA_DIR": str(self.data_dir),
            "VITRINE_EVIDENCE_DIR": str(self.evidence_dir),
            "VITRINE_RECORDINGS_DIR": str(self.recordings_dir),
            "VITRINE_RTC_INTERFACES": "127.0.0.1",
            "VITRINE_LOG_LEVEL": "info",
            "VITRINE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the test receivers
            **{f"VITRINE_{name.upper()}": str(value) for name, value in settings.items()},
        }
        self.groups: list[ProcessGroup] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: RunningServer | None = None
        self.exits: list[int] = []  # every incarnation's exit status, in order

    @property
    def db_file(self) -> Path:
        return self.data_dir / "vitrine.db"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self) -> RunningServer:
        assert not self.running, "already running"
        port = free_port()
        group = ProcessGroup({})
        group.env = {**BASE_ENV, **self.env}
        self.groups.append(group)
        self.proc = group.start("serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(url, group, timeout=START_TIMEOUT_S)
        except BaseException:
            self._reap(signal.SIGKILL)
            raise
        settings = Settings(
            api_key=API_KEY,
            api_secret=TEST_SECRET,
            port=port,
            data_dir=str(self.data_dir),
            evidence_dir=str(self.evidence_dir),
            recordings_dir=str(self.recordings_dir),
            rtc_interfaces=["127.0.0.1"],
        )
        self.server = RunningServer(settings=settings, url=url)
        return self.server

    async def ensure_started(self) -> RunningServer:
        if self.running:
            assert self.server is not None
            return self.server
        if self.proc is not None:  # died on its own: that is worth seeing in the report
            self._reap(signal.SIGKILL)
        return await self.start()

    def kill(self) -> None:
        """``kill -9`` now: no await before the signal, so nothing more runs in the test meanwhile."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self._reap(None)
        assert self.exits[-1] == -signal.SIGKILL, f"exit status {self.exits[-1]}"

    async def stop(self) -> None:
        """SIGTERM, and require a clean shutdown: the app's shutdown ran to its end, and the process exited
        with 0 or by the re-raised SIGTERM (uvicorn re-raises the signal it caught once it has shut down)."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        proc = self.proc
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._reap(signal.SIGKILL)
            raise AssertionError(f"the server did not stop within {STOP_TIMEOUT_S}s of SIGTERM") from None
        self._reap(None)
        log = self.groups[-1].output()
        assert self.exits[-1] in (0, -signal.SIGTERM) and "Application shutdown complete" in log, (
            f"no clean shutdown on SIGTERM (exit status {self.exits[-1]})"
        )

    def _reap(self, sig: signal.Signals | None) -> None:
        proc, self.proc, self.server = self.proc, None, None
        if proc is None:
            return
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        self.exits.append(proc.wait())

    def close(self) -> None:
        if self.proc is not None:
            self._reap(signal.SIGKILL)

    def output(self, tail_lines: int = 150) -> str:
        """The end of every incarnation's log."""
        parts = []
        for number, group in enumerate(self.groups, start=1):
            lines = group.output().splitlines()
            parts.append(f"=== incarnation {number} (last {min(tail_lines, len(lines))} of {len(lines)} lines)")
            parts.extend(lines[-tail_lines:])
        return "\n".join(parts)

    @contextlib.asynccontextmanager
    async def reporting(self) -> AsyncIterator[ServerProcess]:
        """Print every incarnation's log if the block fails."""
        try:
            yield self
        except BaseException:
            print(f"--- server logs ({self.root}), exits {self.exits}\n{self.output()}")
            raise


@contextlib.asynccontextmanager
async def server_process(root: Path | None = None, **settings: object) -> AsyncIterator[ServerProcess]:
    """A server process (not started yet) that is killed when the block ends, its logs printed if it fails."""
    process = ServerProcess(root, **settings)
    try:
        async with process.reporting():
            yield process
    finally:
        process.close()


async def until(
    predicate: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = DEADLINE_S, every: float = 0.05
) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def get_json(server: RunningServer, path: str, *, api: bool = True) -> Any:
    """GET ``path`` (with the API key, or as anyone) and require a 200."""
    client = server.api() if api else httpx.AsyncClient(base_url=server.url, timeout=30)
    async with client:
        response = await client.get(path)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


# -- the consult desk ------------------------------------------------------------------------


async def message_desk(server: RunningServer, shop: str) -> tuple[DeskClient, dict[str, Any]]:
    """A shopper on ``shop``'s page who only wants to leave a message or book a callback: the socket and
    the ``message`` answer with the offered callback slots."""
    shopper = await DeskClient.open(server, "shopper", origin=f"https://{shop}.example")
    await shopper.send({"type": "enter", "shop": shop, "context": {"name": "Kim"}, "intent": "message"})
    offer = await shopper.expect("message")
    assert offer["slots_utc_ms"], "an always-open shop offers callback slots"
    return shopper, offer


# -- inspection evidence -------------------------------------------------------------------------


async def closed_case(
    server: RunningServer, shop: str, *, note: str, verdict: str = "accepted", **setup: Any
) -> dict[str, Any]:
    """A case opened by the shop's backend, its link redeemed and consent given on the buyer's phone, a note
    and a verdict from the inspector's console: the closed case as the backend sees it, plus its tokens."""
    async with server.api() as api:
        opened = await api.post(
            f"/v1/shops/{shop}/cases",
            json={"order_ref": "A-7", "claim": "The vase arrived cracked", "language": "de", **setup},
        )
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case"]["id"]
        login = await api.post(f"/v1/shops/{shop}/cases/{case_id}/console")
        assert login.status_code == 200, login.text
        console = login.json()["token"]
    link_token = opened.json()["link"].split("#t=", 1)[1]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        redeemed = await http.post("/v1/inspect/redeem", json={"token": link_token})
        assert redeemed.status_code == 200, redeemed.text
        buyer = {"Authorization": f"Bearer {redeemed.json()['token']}"}
        view = (await http.get("/v1/inspect/session", headers=buyer)).json()
        consent = await http.post(
            "/v1/inspect/session/consent", json={"version": view["consent_version"]}, headers=buyer
        )
        assert consent.status_code == 200, consent.text
        inspector = {"Authorization": f"Bearer {console}"}
        added = await http.post("/v1/inspect/console/notes", json={"text": note}, headers=inspector)
        assert added.status_code == 200, added.text
        ended = await http.post(
            "/v1/inspect/console/end", json={"verdict": verdict, "comment": "seen on camera"}, headers=inspector
        )
        assert ended.status_code == 200, ended.text
    case = ended.json()
    assert case["state"] == "closed" and case["consent"] is not None and case["artifacts"], case
    return {"case": case, "console": console}


async def verified_bundle(server: RunningServer, shop: str, case_id: str, folder: Path) -> str:
    """Download the case's evidence bundle and verify it offline against the published key; its key id."""
    async with server.api() as api:
        response = await api.get(f"/v1/shops/{shop}/cases/{case_id}/bundle")
    assert response.status_code == 200 and response.content[:2] == b"PK", response.text[:200]
    key = await get_json(server, "/v1/inspect/evidence-key", api=False)
    handle, name = tempfile.mkstemp(prefix=f"{case_id}-", suffix=".zip", dir=folder)
    with open(handle, "wb") as out:
        out.write(response.content)
    result = verify_bundle(Path(name), public_key_pem=key["public_key_pem"])
    assert result.ok, result.problems
    assert result.pinned and result.key_id == key["key_id"]
    return result.key_id


async def artifact_hashes(server: RunningServer, shop: str, case: dict[str, Any]) -> dict[str, str]:
    """Every artifact of the case downloaded: id -> the SHA-256 the server reports, checked against the record."""
    hashes = {}
    async with server.api() as api:
        for artifact in case["artifacts"]:
            response = await api.get(f"/v1/shops/{shop}/cases/{case['id']}/artifacts/{artifact['id']}")
            assert response.status_code == 200, response.text
            digest = hashlib.sha256(response.content).hexdigest()
            assert digest == artifact["sha256"] == response.headers["x-content-sha256"]
            hashes[artifact["id"]] = digest
    return hashes


def without_nulls(value: Any) -> Any:
    """``value`` with every null field left out: socket pushes omit them, REST answers spell them out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path -> content)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}
