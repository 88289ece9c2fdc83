"""Readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from media.taps import MalformedPackets
from signaling.deps import MediaWorkerDep, StateDep
from signaling.metrics import METRICS
from signaling.placement import can_place

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 once the server can take joins (a media worker is registered and not draining)")
async def healthz(state: StateDep, response: Response) -> dict[str, str]:
    if await can_place(state.coordination):
        return {"status": "ok"}
    response.status_code = 503
    return {"status": "no media worker"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(worker: MediaWorkerDep) -> Response:
    if worker is not None:
        for name, value in worker.media_stats().items():
            METRICS.media.labels(stat=name).set(value)
        for cause, count in MalformedPackets.counts.items():
            METRICS.media_malformed_packets.labels(cause=cause).set(count)
    return Response(generate_latest(METRICS.registry), media_type=CONTENT_TYPE_LATEST)
