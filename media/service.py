"""Run a MediaWorker: register it with a heartbeat and, outside the server's own process, serve RPC and send its
pushes over the event bus (Redis in a scaled deployment; the parent's, through the bridge, in a worker process of
``vitrine serve``: ``vitrine/core/state/bridged.py``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Protocol

from media.drain import Drain
from media.worker import MediaWorker
from vitrine.core import logs
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Room
from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus, Subscription, publish_until_heard
from vitrine.core.state.epoch import EpochStore, EpochWatch
from vitrine.core.state.nodes import WorkerRegistry
from vitrine.core.tasks import Cadence, TaskSet, stop_tasks
from vitrine.core.wire.rpc import AckRequest, ArtifactStored, PushAck, RpcRequest, RpcResponse, Unconfirmed, WorkerPush

logger = logging.getLogger(__name__)


class WorkerCoordination(Protocol):
    """What a worker uses of coordination: the bus (RPC in, pushes out), its registration, the epoch."""

    @property
    def bus(self) -> EventBus: ...

    @property
    def nodes(self) -> WorkerRegistry: ...

    @property
    def epoch(self) -> EpochStore: ...


class WorkerService:
    def __init__(
        self,
        settings: Settings,
        coordination: WorkerCoordination,
        worker: MediaWorker,
        pusher: BusPusher | None = None,
    ) -> None:
        self.settings = settings
        self.coordination = coordination
        self.worker = worker
        self.pusher = pusher  # the worker's pushes over the bus; None when they are direct calls (in-process)
        self._epoch = EpochWatch(coordination.epoch)
        self._heartbeat: asyncio.Task[None] | None = None
        self._rpc: Subscription | None = None
        self._requests = TaskSet()
        self._stopped = False
        self.drain = Drain(self)  # a SIGTERM or a DrainCommand moves its rooms off before it stops

    async def start(self, serve_rpc: bool) -> None:
        if self.pusher is not None:
            await self.pusher.start()
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
        cadence = Cadence(self.settings.worker_heartbeat_s)
        while True:
            await cadence.wait()
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
        _bind_log_context(request.command)  # this task's (each request has its own): what it logs names the call
        reply = await self.worker.handle(request.command)
        response = RpcResponse(id=request.id, reply=reply)
        await self.coordination.bus.publish(request.reply_to, response.model_dump_json())

    async def stop(self) -> None:
        """Close every room and deregister; once (a drain stops the service, and so may the shutdown after)."""
        if self._stopped:
            return
        self._stopped = True
        await stop_tasks(self._heartbeat)
        if self._rpc is not None:
            await self._rpc.close()
        await self.worker.close()
        if self.pusher is not None:
            await self.pusher.close()
        await self.coordination.nodes.remove(self.worker.id)


def _bind_log_context(command: object) -> None:
    """The room and participant a command is about, for the logs (``vitrine.core.logs``)."""
    room, participant = getattr(command, "room", None), getattr(command, "participant", None)
    logs.bind(
        room=room.name if isinstance(room, Room) else room,
        participant=participant.sid if isinstance(participant, Participant) else getattr(command, "sid", None),
    )


class BusPusher:
    """What the worker starts itself, routed to the signaling node that holds the participant's socket.

    An offer or a gone peer is fire-and-forget. An evidence file waits for the node's answer that it is in
    the case's record (``ArtifactStored.ack``, answered on ``keys.worker_acks_channel``): the phone hears
    ``stored`` only then, as it does embedded. A refusal raises its typed error (the file is removed); no answer in time
    raises ``Unconfirmed`` (the file is kept: it may have been recorded)."""

    def __init__(self, coordination: WorkerCoordination, worker_id: str, timeout_s: float) -> None:
        self.bus = coordination.bus
        self.timeout_s = timeout_s
        self._acks = keys.worker_acks_channel(worker_id)
        self._waiting: dict[str, asyncio.Future[PushAck]] = {}
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(self._acks, self._on_ack)

    async def push(self, message: WorkerPush) -> None:
        inbox = keys.node_inbox_channel(message.node_id)
        match message:
            case ArtifactStored():
                await self._push_until_answered(inbox, message)
            case _:
                await self.bus.publish(inbox, message.model_dump_json())

    async def _push_until_answered(self, inbox: str, message: ArtifactStored) -> None:
        ack = AckRequest(id=secrets.token_hex(8), reply_to=self._acks)
        answer = self._waiting[ack.id] = asyncio.get_running_loop().create_future()
        body = message.model_copy(update={"ack": ack}).model_dump_json()
        try:
            if not await publish_until_heard(self.bus, inbox, body, self.timeout_s / 2):
                # Nobody heard it, so nothing recorded it: a refusal, and the file can go.
                raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "the server holding this call is not reachable")
            try:
                async with asyncio.timeout(self.timeout_s):
                    reply = await answer
            except TimeoutError:
                raise Unconfirmed("the server did not confirm the photo in time; send it again") from None
        finally:
            self._waiting.pop(ack.id, None)
        reply.raise_for_error()

    async def _on_ack(self, raw: str) -> None:
        try:
            answer = PushAck.model_validate_json(raw)
        except ValueError:
            logger.warning("dropped a malformed push answer")
            return
        waiting = self._waiting.get(answer.id)
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        for waiting in self._waiting.values():
            waiting.cancel()
