"""The composition root's wiring: a signaling app, with or without media workers of its own.

``embedded`` (``vitrine serve``, the LiveKit single-node pattern) runs signaling with its media workers:
``VITRINE_MEDIA_WORKERS`` worker processes, one per core by default (``vitrine/worker_pool.py``), reached over the
bus like a scaled deployment's workers; or, with ``0``, one worker in signaling's own process, called directly.
``signaling`` (``vitrine signaling``) runs signaling only and reaches workers over Redis. This is the one place
that knows both floors: signaling takes a ``LocalMedia`` and never builds a worker itself, and the worker knows
nothing of signaling but the ``WorkerPush``es it sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI

from media import taps
from media.service import BusPusher, WorkerService
from media.worker import MediaWorker
from signaling.app import create_app as create_signaling_app
from signaling.local_media import LocalMedia
from signaling.state import State
from signaling.worker_link import LocalWorkerLink, WorkerLink
from vitrine.core.config import Settings
from vitrine.core.wire.rpc import PushHandler
from vitrine.worker_pool import WorkerPool

Mode = Literal["embedded", "signaling"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings, mode: Mode = "embedded") -> FastAPI:
    """The server's ASGI app: ``embedded`` starts media workers beside signaling, ``signaling`` does not."""
    if mode == "signaling":
        return create_signaling_app(settings, None)
    if settings.worker_processes():
        return create_signaling_app(settings, LocalMedia(start_worker_processes, over_bus=True))
    return create_signaling_app(settings, LocalMedia(start_local_worker, over_bus=False))


def _warn_if_loopback_only(settings: Settings) -> None:
    same_host_note = taps.loopback_only_warning(settings.rtc_interfaces)
    if same_host_note is not None:  # `vitrine serve` on 127.0.0.1: browsers here connect, libnice encoders cannot
        logger.warning(same_host_note)


async def start_worker_processes(settings: Settings, state: State, link: WorkerLink) -> WorkerPool:
    """``VITRINE_MEDIA_WORKERS`` worker processes, lent this process's coordination; ``link`` reaches them over
    its bus."""
    _warn_if_loopback_only(settings)
    pool = WorkerPool(settings, state.coordination, settings.worker_processes())
    await pool.start()
    return pool


@dataclass
class InProcessWorker:
    """The one media worker of ``VITRINE_MEDIA_WORKERS=0``, in signaling's process: its metrics are collected with
    signaling's own."""

    service: WorkerService

    @property
    def worker(self) -> MediaWorker:
        return self.service.worker

    async def worker_metrics(self) -> list[str]:
        return []

    async def stop(self) -> None:
        await self.service.stop()


async def start_local_worker(settings: Settings, state: State, link: WorkerLink) -> InProcessWorker:
    """A media worker in this process. Alone (no Redis) it takes commands and sends pushes straight through
    ``link``; in a scaled cluster it serves RPC over Redis like any worker and pushes over Redis too."""
    worker_id = f"{settings.node_id}-media"
    pusher = BusPusher(state.coordination, worker_id, settings.worker_rpc_timeout_s) if settings.redis_url else None
    push: PushHandler
    if pusher is not None:
        push = pusher.push
    elif isinstance(link, LocalWorkerLink):
        push = link.deliver
    else:
        raise TypeError("a worker without Redis needs the in-process worker link")
    _warn_if_loopback_only(settings)
    worker = MediaWorker(settings, worker_id=worker_id, push=push)
    if isinstance(link, LocalWorkerLink):
        link.attach(worker)
    service = WorkerService(settings, state.coordination, worker, pusher)
    await service.start(serve_rpc=bool(settings.redis_url))
    return InProcessWorker(service)
