"""``WorkerPool``: the media worker processes of ``vitrine serve``, one per core by default (``VITRINE_MEDIA_WORKERS``).

One Python process forwards media on one core. The pool runs several ``vitrine media`` processes beside signaling
so that a box's every core forwards, with no Redis: the server lends them its own coordination over a private
Unix socket (``vitrine/core/state/bridge.py``), and signaling reaches them with the same typed RPC as a scaled
deployment's workers (``signaling/worker_link.py`` ``BusWorkerLink``). Placement spreads calls over them, and a live
show's viewers cascade across them (``signaling/cascade.py``).

A worker that dies is started again in its slot under a new node id (its old id's rooms are moved by the
runtime's watchdog, exactly as a dead scaled worker's are); one that keeps dying at start is started again with a
growing delay. When the server stops, it closes the bridge: each worker closes its rooms and exits, and one that
has not within ``STOP_TIMEOUT_S`` is killed. If the server itself is killed, the kernel closes the bridge and the
workers stop the same way, so none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from media.worker import MediaWorker
from vitrine.core.config import Settings
from vitrine.core.state.bridge import BridgeServer
from vitrine.core.state.coordination import Coordination
from vitrine.core.tasks import TaskSet

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # a worker imports aiortc and PyAV before it registers: seconds on a loaded machine
STOP_TIMEOUT_S = 10.0
RESTART_DELAY_S = (0.5, 30.0)  # after a worker dies: first delay, then doubled while it dies within STABLE_S
STABLE_S = 30.0
REGISTERED_POLL_S = 0.05


def _worker_env() -> dict[str, str]:
    """A worker's settings come over the bridge, whole; none from the environment, which may hold secrets it
    never uses (``Settings.for_worker_process``)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("VITRINE_")}


class WorkerStartError(RuntimeError):
    """A worker process exited, or did not register, while the server was starting."""


@dataclass
class _Slot:
    index: int
    node_id: str = ""
    generation: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def worker_id(self) -> str:
        return f"{self.node_id}-media"


class WorkerPool:
    """Starts, watches and stops the server's media worker processes."""

    worker: MediaWorker | None = None  # no worker runs in the server's own process

    def __init__(self, settings: Settings, coordination: Coordination, processes: int) -> None:
        self.settings = settings
        self.coordination = coordination
        self.slots = [_Slot(index) for index in range(processes)]
        self._folder = tempfile.mkdtemp(prefix="vitrine-workers-")  # mode 0700: the socket's settings hold secrets
        self._socket = os.path.join(self._folder, "bridge.sock")
        self._bridge = BridgeServer(coordination, self._welcome)
        self._supervisors = TaskSet()
        self._stopping = False

    def _welcome(self, index: int) -> dict[str, object]:
        return self.settings.for_worker_process(self.slots[index].node_id)

    async def start(self) -> None:
        """Start every worker and return once each has registered, so the server's first join finds them all."""
        await self._bridge.start(self._socket)
        for slot in self.slots:
            await self._spawn(slot)
        try:
            await self._until_registered(self.slots)
        except BaseException:
            await self.stop()
            raise
        for slot in self.slots:
            self._supervisors.spawn(self._supervise(slot))
        logger.info("%d media worker process(es) ready", len(self.slots))

    async def _spawn(self, slot: _Slot) -> None:
        slot.node_id = self.settings.node_id + f"-{slot.index}" + (f"r{slot.generation}" if slot.generation else "")
        slot.generation += 1
        slot.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vitrine.cli",
            "media",
            "--bridge",
            self._socket,
            "--slot",
            str(slot.index),
            stdin=subprocess.DEVNULL,
            env=_worker_env(),
        )

    async def _until_registered(self, slots: list[_Slot]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while True:
            live = {node.id for node in await self.coordination.nodes.live_workers()}
            if all(slot.worker_id in live for slot in slots):
                return
            for slot in slots:
                if slot.process is not None and slot.process.returncode is not None:
                    raise WorkerStartError(f"media worker {slot.node_id} exited with {slot.process.returncode}")
            if loop.time() > deadline:
                missing = sorted(slot.worker_id for slot in slots if slot.worker_id not in live)
                raise WorkerStartError(f"media worker(s) {', '.join(missing)} did not register in time")
            await asyncio.sleep(REGISTERED_POLL_S)

    async def _supervise(self, slot: _Slot) -> None:
        """Start the slot's worker again whenever it exits while the server runs."""
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY_S[0]
        while slot.process is not None:
            started = loop.time()
            code = await slot.process.wait()
            if self._stopping:
                return
            delay = RESTART_DELAY_S[0] if loop.time() - started > STABLE_S else min(delay * 2, RESTART_DELAY_S[1])
            logger.error(
                "media worker %s exited with %s; starting slot %d again in %.1f s",
                slot.worker_id,
                code,
                slot.index,
                delay,
            )
            await asyncio.sleep(delay)
            await self._spawn(slot)

    async def worker_metrics(self) -> list[str]:
        """Each worker's metrics, in Prometheus text: the server's ``/metrics`` shows them with its own."""
        return await self._bridge.metrics()

    async def stop(self) -> None:
        self._stopping = True
        await self._supervisors.cancel()
        await self._bridge.close()  # each worker sees its bridge close: it closes its rooms and exits
        for slot in self.slots:
            if slot.process is None or slot.process.returncode is not None:
                continue
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await slot.process.wait()
            except TimeoutError:
                logger.warning("media worker %s did not stop in time; killing it", slot.worker_id)
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
                await slot.process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)
