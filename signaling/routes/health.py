"""Readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from signaling.deps import LocalMediaDep, SettingsDep, StateDep
from signaling.metrics import render
from signaling.placement import can_place
from vitrine.core.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 once the server can take joins (a media worker is registered and not draining)")
async def healthz(state: StateDep, response: Response) -> dict[str, str]:
    if await can_place(state.coordination):
        return {"status": "ok"}
    response.status_code = 503
    return {"status": "no media worker"}


@router.get("/metrics", summary="Prometheus metrics of this process, labelled with its node", response_class=Response)
async def metrics(settings: SettingsDep, media: LocalMediaDep) -> Response:
    if media is None:
        return Response(render(settings.node_id, None, []), media_type=CONTENT_TYPE)
    return Response(render(settings.node_id, media.worker, await media.worker_metrics()), media_type=CONTENT_TYPE)
