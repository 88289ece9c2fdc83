"""The composition root's wiring: a signaling app, with or without a media worker in its process.

``embedded`` (``vitrine serve``, the LiveKit single-node pattern) runs signaling and one media worker in one
process; ``signaling`` (``vitrine signaling``) runs signaling only and reaches workers over Redis. This is the
one place that knows both floors: signaling takes a ``LocalMedia`` and never builds a worker itself, and the
worker knows nothing of signaling but the ``WorkerPush``es it sends.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import FastAPI

from media import taps
from media.service import RedisPusher, WorkerService
from media.worker import MediaWorker
from signaling.app import create_app as create_signaling_app
from signaling.state import State
from signaling.worker_link import LocalWorkerLink, WorkerLink
from vitrine.core.config import Settings
from vitrine.core.wire.rpc import PushHandler

Mode = Literal["embedded", "signaling"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings, mode: Mode = "embedded") -> FastAPI:
    """The server's ASGI app: ``embedded`` starts a media worker beside signaling, ``signaling`` does not."""
    return create_signaling_app(settings, start_local_worker if mode == "embedded" else None)


async def start_local_worker(settings: Settings, state: State, link: WorkerLink) -> WorkerService:
    """A media worker in this process. Alone (no Redis) it takes commands and sends pushes straight through
    ``link``; in a scaled cluster it serves RPC over Redis like any worker and pushes over Redis too."""
    worker_id = f"{settings.node_id}-media"
    pusher = RedisPusher(state.coordination, worker_id, settings.worker_rpc_timeout_s) if settings.redis_url else None
    push: PushHandler
    if pusher is not None:
        push = pusher.push
    elif isinstance(link, LocalWorkerLink):
        push = link.deliver
    else:
        raise TypeError("a worker without Redis needs the in-process worker link")
    same_host_note = taps.loopback_only_warning(settings.rtc_interfaces)
    if same_host_note is not None:  # `vitrine serve` on 127.0.0.1: browsers here connect, libnice encoders cannot
        logger.warning(same_host_note)
    worker = MediaWorker(settings, worker_id=worker_id, push=push)
    if isinstance(link, LocalWorkerLink):
        link.attach(worker)
    service = WorkerService(settings, state.coordination, worker, pusher)
    await service.start(serve_rpc=bool(settings.redis_url))
    return service
