"""Drain a media worker for a rolling upgrade: its SIGTERM, or the operator's ``POST /v1/workers/{id}/drain``.

Killing a worker makes its clients wait for the watchdog to notice the missing heartbeat before they are sent
to reconnect. A drain says it first instead:
1. the worker announces ``draining`` in its registration at once, so placement gives it no new room or viewer
   (and re-places, on another worker, any room of its own a client joins again);
2. it closes its rooms, which finishes their recordings (the next worker records the next part), and tells
   each participant's signaling node that its peer is gone (``GoneReason.DRAINING``): signaling sends the
   client to reconnect, as for any peer that ended, and a WHIP/WHEP session leaves as one whose peer ended;
3. it stays registered, draining, until no room has come back for one worker TTL (a join placed here just
   before the announcement may still land: it is closed the same way), bounded by ``drain_timeout_s``;
   then it stops and deregisters.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from media.worker import MediaWorker
from vitrine.core.config import Settings
from vitrine.core.state.nodes import WorkerState
from vitrine.core.wire.rpc import GoneReason

logger = logging.getLogger(__name__)

DRAIN_POLL_S = 0.1


class Drained(Protocol):
    """What a drain works on: the worker's service (``media.service.WorkerService``)."""

    settings: Settings
    worker: MediaWorker

    async def beat(self) -> None: ...

    async def stop(self) -> None: ...


class Drain:
    def __init__(self, service: Drained) -> None:
        self.service = service
        self.worker = service.worker
        self.stopped = asyncio.Event()  # the worker is deregistered: its process may exit
        self._task: asyncio.Task[None] | None = None
        self.worker.on_drain = self.begin

    @property
    def state(self) -> WorkerState:
        return self.worker.state

    def begin(self) -> None:
        """Start draining; a drain already under way goes on."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop_now(self) -> None:
        """Give up draining (a second SIGTERM): stop at once, closing whatever is left."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stop()

    async def _run(self) -> None:
        settings = self.service.settings
        self.worker.state = WorkerState.DRAINING
        started = asyncio.get_running_loop().time()
        try:
            await self.service.beat()  # before any client is sent away, or it could be placed here again
        except Exception:
            logger.exception("worker %s could not announce its drain", self.worker.id)
        try:
            async with asyncio.timeout_at(started + settings.drain_timeout_s):
                rooms = await self.worker.drop_rooms(GoneReason.DRAINING)
                logger.warning(
                    "worker %s draining: closed %d room(s), their clients sent to reconnect", self.worker.id, rooms
                )
                await self._until_empty_for(settings.worker_ttl_s)
        except TimeoutError:
            logger.warning(
                "worker %s: drain timed out with %d room(s); closing them", self.worker.id, len(self.worker.rooms)
            )
        await self._stop()
        logger.warning("worker %s drained in %.1f s", self.worker.id, asyncio.get_running_loop().time() - started)

    async def _until_empty_for(self, quiet_s: float) -> None:
        loop = asyncio.get_running_loop()
        empty_since = loop.time()
        while loop.time() - empty_since < quiet_s:
            await asyncio.sleep(DRAIN_POLL_S)
            if self.worker.rooms:  # placed here just before the drain was announced
                await self.worker.drop_rooms(GoneReason.DRAINING)
                empty_since = loop.time()

    async def _stop(self) -> None:
        await self.service.stop()
        self.worker.state = WorkerState.STOPPED
        self.stopped.set()
