"""Media workers, for operators: list them, and drain one before upgrading it. Authenticated with the API key.

A drain (``media/drain.py``) does what the worker's SIGTERM does: the worker takes no new room, its rooms'
clients are sent to reconnect on another worker, and it stops once its rooms stay empty. A ``vitrine media``
process then exits; an embedded server's worker stops and that server takes no more calls until restarted.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from signaling.deps import ApiKeyDep, LinkDep, StateDep
from vitrine.core.errors import ErrorCode, VitrineError, error_responses
from vitrine.core.state.nodes import WorkerNode, WorkerState
from vitrine.core.wire.rpc import Done, DrainCommand, expect

router = APIRouter(prefix="/v1/workers", tags=["workers"], dependencies=[ApiKeyDep])


@router.get("", response_model=list[WorkerNode], summary="The registered media workers, with their load and state")
async def list_workers(state: StateDep) -> list[WorkerNode]:
    return sorted(await state.nodes.live_workers(), key=lambda node: node.id)


@router.post(
    "/{worker_id}/drain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WorkerNode,
    summary="Drain a media worker: no new rooms, its clients reconnect elsewhere, then it stops",
    responses=error_responses(ErrorCode.WORKER_NOT_FOUND, ErrorCode.WORKER_UNAVAILABLE),
)
async def drain_worker(worker_id: str, state: StateDep, link: LinkDep) -> WorkerNode:
    node = await state.nodes.get(worker_id)
    if node is None:
        raise VitrineError(ErrorCode.WORKER_NOT_FOUND, "no such media worker is registered")
    expect(await link.call(worker_id, DrainCommand()), Done)
    return node.model_copy(update={"state": WorkerState.DRAINING})
