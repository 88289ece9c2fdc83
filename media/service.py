"""Run a MediaWorker: register it with a heartbeat and, when scaled, serve RPC over Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from media.worker import MediaWorker
from vitrine.config import Settings
from vitrine.rpc import NodeMessage, OfferPush, RpcRequest, RpcResponse
from vitrine.state import Coordination, keys
from vitrine.state.bus import Subscription
from vitrine.state.epoch import EpochWatch
from vitrine.tasks import TaskSet

logger = logging.getLogger(__name__)


class WorkerService:
    def __init__(self, settings: Settings, coordination: Coordination, worker: MediaWorker) -> None:
        self.settings = settings
        self.coordination = coordination
        self.worker = worker
        self._epoch = EpochWatch(coordination.epoch)
        self._heartbeat: asyncio.Task[None] | None = None
        self._rpc: Subscription | None = None
        self._requests = TaskSet()

    async def start(self, serve_rpc: bool) -> None:
        await self.beat()
        if serve_rpc:
            self._rpc = await self.coordination.bus.subscribe(keys.worker_rpc_channel(self.worker.id), self._on_request)
        self._heartbeat = asyncio.create_task(self._beat_forever())

    async def beat(self) -> None:
        """Register (again) with the worker's load. After a loss of coordination state its rooms are closed
        first: registering with them would let a room be served here and, placed anew, on another worker."""
        if await self._epoch.changed():
            dropped = await self.worker.drop_rooms()
            logger.warning("worker %s: coordination state was lost; closed %d room(s)", self.worker.id, dropped)
        await self.coordination.nodes.heartbeat(self.worker.node(), self.settings.worker_ttl_s)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_s)
            try:
                await self.beat()
            except Exception:
                logger.exception("worker heartbeat failed")

    async def _on_request(self, raw: str) -> None:
        try:
            request = RpcRequest.model_validate_json(raw)
        except ValueError:
            logger.warning("dropped a malformed worker request")
            return
        # Start now so room locks are taken in arrival order; run concurrently across rooms.
        self._requests.spawn(self._serve(request))

    async def _serve(self, request: RpcRequest) -> None:
        reply = await self.worker.handle(request.command)
        response = NodeMessage(response=RpcResponse(id=request.id, reply=reply))
        await self.coordination.bus.publish(request.reply_to, response.model_dump_json())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._rpc is not None:
            await self._rpc.close()
        await self.worker.close()
        await self.coordination.nodes.remove(self.worker.id)


def redis_push(coordination: Coordination):  # noqa: ANN201 - returns the worker's push callback
    """Route worker-initiated offers to the signaling node that holds the participant's socket."""

    async def push(message: OfferPush) -> None:
        await coordination.bus.publish(keys.node_inbox_channel(message.node_id),
                                NodeMessage(push=message).model_dump_json())

    return push
