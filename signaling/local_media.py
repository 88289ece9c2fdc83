"""Media that the composition root starts beside signaling, as signaling sees it.

``vitrine.embedded`` decides what runs: one worker in signaling's process (called directly, over
``LocalWorkerLink``) or worker processes (reached over the bus, ``BusWorkerLink``, like a scaled deployment's).
Signaling only starts it, shows its metrics and stops it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from media.worker import MediaWorker
from signaling.state import State
from signaling.worker_link import WorkerLink
from vitrine.core.config import Settings


class RunningMedia(Protocol):
    """Media the composition root started beside signaling: one worker in this process, or worker processes."""

    @property
    def worker(self) -> MediaWorker | None:
        """The worker in this process, if there is one."""

    async def worker_metrics(self) -> list[str]:
        """The Prometheus text of workers in other processes, for this process's ``/metrics``."""

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class LocalMedia:
    """How the composition root (``vitrine.embedded``) starts media beside signaling."""

    start: Callable[[Settings, State, WorkerLink], Awaitable[RunningMedia]]
    over_bus: bool  # its workers are other processes, reached over the event bus as a scaled deployment's are
