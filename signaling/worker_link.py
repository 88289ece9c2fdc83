"""How signaling reaches media workers: a direct call in-process, or RPC over Redis.

Both implement ``WorkerLink``; the app never knows which one it has.

A join may wait in its worker's line for a handshake slot (``media/admission.py``); the worker then pushes
``JoinQueued``. The link hands it to whoever listens for that participant (``in_line``: the joiner's session,
which tells its client ``queued``), and never to the push handler. Over Redis each notice also moves the
deadline of the join's reply (to the next notice, ``JoinQueued.again_s``, plus the RPC timeout), so a join that
waits its turn is not given up as a worker that did not answer, and one whose worker went silent still is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus, Subscription, publish_until_heard
from vitrine.core.tasks import TaskSet
from vitrine.core.wire.rpc import (
    AckRequest,
    ArtifactStored,
    JoinCommand,
    JoinQueued,
    OfferCommand,
    PushAck,
    PushHandler,
    RpcRequest,
    RpcResponse,
    WorkerCommand,
    WorkerPush,
    WorkerReply,
    node_message_adapter,
)

logger = logging.getLogger(__name__)

RESUBSCRIBE_GRACE_S = 3.0  # how long a registered worker may go unheard on its channel before it is unavailable

QueueListener = Callable[[int], Awaitable[None]]  # told a waiting join's place in its worker's line


class WorkerLink(Protocol):
    async def call(self, worker_id: str, command: WorkerCommand) -> WorkerReply: ...

    def on_push(self, handler: PushHandler) -> None: ...

    def in_line(self, sid: str, listener: QueueListener | None) -> contextlib.AbstractContextManager[None]: ...

    async def close(self) -> None: ...


class QueueListeners:
    """Who listens for a waiting join's place in line, by participant sid, while its join is being called."""

    def __init__(self) -> None:
        self._listeners: dict[str, QueueListener] = {}

    @contextlib.contextmanager
    def in_line(self, sid: str, listener: QueueListener | None) -> Iterator[None]:
        if listener is None:
            yield
            return
        self._listeners[sid] = listener
        try:
            yield
        finally:
            if self._listeners.get(sid) is listener:
                del self._listeners[sid]

    async def tell(self, push: JoinQueued) -> None:
        listener = self._listeners.get(push.sid)
        if listener is not None:
            await listener(push.position)


class CommandHandler(Protocol):
    async def handle(self, command: WorkerCommand) -> WorkerReply: ...


def _may_wait(command: WorkerCommand) -> str | None:
    """The sid of a command that may wait in its worker's line: a join, or a client's (first) offer."""
    match command:
        case JoinCommand(participant=participant):
            return participant.sid
        case OfferCommand(sid=sid):
            return sid
        case _:
            return None


class LocalWorkerLink(QueueListeners):
    """The embedded server's link: the worker lives in this process."""

    def __init__(self) -> None:
        super().__init__()
        self.worker: CommandHandler | None = None
        self._push: PushHandler | None = None

    def attach(self, worker: CommandHandler) -> None:
        self.worker = worker

    async def call(self, worker_id: str, command: WorkerCommand) -> WorkerReply:
        if self.worker is None:
            raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "no media worker is running")
        return await self.worker.handle(command)

    def on_push(self, handler: PushHandler) -> None:
        self._push = handler

    async def deliver(self, push: WorkerPush) -> None:
        if isinstance(push, JoinQueued):
            await self.tell(push)
        elif self._push is not None:
            await self._push(push)

    async def close(self) -> None:
        return None


class BusWorkerLink(QueueListeners):
    """Request/response over the event bus: requests to a worker's channel, replies to this node's inbox."""

    def __init__(self, bus: EventBus, node_id: str, timeout_s: float) -> None:
        super().__init__()
        self.bus = bus
        self.node_id = node_id
        self.timeout_s = timeout_s
        self._inbox = keys.node_inbox_channel(node_id)
        self._pending: dict[str, asyncio.Future[WorkerReply]] = {}
        self._joins: dict[str, str] = {}  # participant sid -> the id of its join's request, while it is pending
        self._queued_until: dict[str, float] = {}  # request id -> the loop time its reply may take until, queued
        self._push: PushHandler | None = None
        self._subscription: Subscription | None = None
        self._answering = TaskSet()

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(self._inbox, self._on_inbox)

    def on_push(self, handler: PushHandler) -> None:
        self._push = handler

    async def call(self, worker_id: str, command: WorkerCommand) -> WorkerReply:
        request = RpcRequest(id=secrets.token_hex(8), reply_to=self._inbox, command=command)
        future: asyncio.Future[WorkerReply] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        waits = _may_wait(command)
        if waits is not None:
            self._joins[waits] = request.id
        try:
            await self._deliver(worker_id, request)
            return await self._reply(request.id, future)
        except TimeoutError:
            raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "the media worker did not answer in time") from None
        finally:
            self._pending.pop(request.id, None)
            self._queued_until.pop(request.id, None)
            if waits is not None and self._joins.get(waits) == request.id:
                del self._joins[waits]

    async def _reply(self, request_id: str, future: asyncio.Future[WorkerReply]) -> WorkerReply:
        """The reply, within ``timeout_s`` of the request or, for a join in its worker's line, of the next notice
        the last one promised."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                until = self._queued_until.get(request_id, 0.0)
                if until <= deadline:
                    raise
                deadline = until

    async def _deliver(self, worker_id: str, request: RpcRequest) -> None:
        """Publish until the worker hears it (it may be resubscribing); one that stays unheard is
        ``worker_unavailable``."""
        if not await publish_until_heard(
            self.bus, keys.worker_rpc_channel(worker_id), request.model_dump_json(), RESUBSCRIBE_GRACE_S
        ):
            raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "the media worker is not listening")

    async def _on_inbox(self, raw: str) -> None:
        match node_message_adapter.validate_json(raw):
            case RpcResponse(id=request_id, reply=reply):
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(reply)
            case ArtifactStored(ack=AckRequest() as ack) as push:
                self._answering.spawn(self._answer(push, ack))  # never holds up RPC replies
            case JoinQueued(sid=sid, again_s=again_s) as queued:
                if (join_id := self._joins.get(sid)) is not None:
                    self._queued_until[join_id] = asyncio.get_running_loop().time() + again_s + self.timeout_s
                await self.tell(queued)
            case push if self._push is not None:
                await self._push(push)

    async def _answer(self, push: ArtifactStored, ack: AckRequest) -> None:
        """Handle a push that waits for it, and tell its worker how that went (a typed refusal, or done)."""
        answer = PushAck(id=ack.id)
        try:
            if self._push is None:
                raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "this node is not ready")
            await self._push(push)
        except VitrineError as exc:
            answer = PushAck(id=ack.id, error=exc.code, message=exc.message)
        except Exception:
            logger.exception("a push from room %s could not be handled", push.room)
            answer = PushAck(id=ack.id, error=ErrorCode.INTERNAL, message="it could not be recorded")
        await self.bus.publish(ack.reply_to, answer.model_dump_json())

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self._answering.cancel()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
